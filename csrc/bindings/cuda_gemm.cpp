// CUDA gemm bindings: raw device pointers + the caller's stream; checks live in
// pyfastnn/cuda_ops/gemm.py. Every function takes the same arguments (the
// fields of GemmArgs, strides in elements) and launches one kernel. `variant`
// picks an SGEMM configuration (SgemmVariant; 0 = default); the other kernels
// have one configuration and ignore it.
#include "bindings/cuda_common.h"
#include "cuda/gemm/gemm_args.h"
#include "cuda/gemm/gemm_reference.h"
#include "cuda/gemm/gemm_tc.h"
#include "cuda/gemm/sgemm.h"

namespace pyfastnn {
namespace cuda_bindings {

namespace {

namespace py = pybind11;
using Launcher = cudaError_t (*)(const cuda::GemmArgs&, cudaStream_t);

void def_gemm(py::module_& m, const char* name, Launcher launcher, const char* doc) {
  m.def(
      name,
      [launcher](std::uintptr_t a, std::uintptr_t b, std::uintptr_t c, std::uintptr_t bias, std::int64_t rows,
                 std::int64_t cols, std::int64_t inner, std::int64_t batch, std::int64_t lda, std::int64_t ldb,
                 std::int64_t ldc, std::int64_t batch_stride_a, std::int64_t batch_stride_b,
                 std::int64_t batch_stride_c, bool trans_a, bool trans_b, int act, std::uintptr_t stream,
                 int variant) {
        cuda::GemmArgs args;
        args.a = reinterpret_cast<const void*>(a);
        args.b = reinterpret_cast<const void*>(b);
        args.c = reinterpret_cast<void*>(c);
        args.bias = reinterpret_cast<const float*>(bias);
        args.m = rows;
        args.n = cols;
        args.k = inner;
        args.batch = batch;
        args.lda = lda;
        args.ldb = ldb;
        args.ldc = ldc;
        args.batch_stride_a = batch_stride_a;
        args.batch_stride_b = batch_stride_b;
        args.batch_stride_c = batch_stride_c;
        args.trans_a = trans_a;
        args.trans_b = trans_b;
        args.act = act;
        args.variant = variant;
        cudaError_t err;
        {
          py::gil_scoped_release release;
          err = launcher(args, stream_of(stream));
        }
        check(err, "matmul");
      },
      py::arg("a"), py::arg("b"), py::arg("c"), py::arg("bias"), py::arg("m"), py::arg("n"), py::arg("k"),
      py::arg("batch"), py::arg("lda"), py::arg("ldb"), py::arg("ldc"), py::arg("batch_stride_a"),
      py::arg("batch_stride_b"), py::arg("batch_stride_c"), py::arg("trans_a"), py::arg("trans_b"), py::arg("act"),
      py::arg("stream"), py::arg("variant") = 0, doc);
}

}  // namespace

void bind_gemm(pybind11::module_& m) {
  def_gemm(m, "gemm_f32", &cuda::sgemm_f32, "float32 tiled SGEMM (CUDA cores) with fused bias + activation");
  def_gemm(m, "gemm_f16", &cuda::gemm_tc_f16, "float16 tensor-core GEMM, fp32 accumulation, fused epilogue");
  def_gemm(m, "gemm_bf16", &cuda::gemm_tc_bf16, "bfloat16 tensor-core GEMM, fp32 accumulation, fused epilogue");
  def_gemm(m, "gemm_reference_f32", &cuda::gemm_reference_f32, "float32 reference GEMM (one thread per output)");
  def_gemm(m, "gemm_reference_f16", &cuda::gemm_reference_f16, "float16 reference GEMM (one thread per output)");
  def_gemm(m, "gemm_reference_bf16", &cuda::gemm_reference_bf16, "bfloat16 reference GEMM (one thread per output)");
}

}  // namespace cuda_bindings
}  // namespace pyfastnn
