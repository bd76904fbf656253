// The one parameter block every CUDA GEMM of pyfastnn takes (SGEMM, tensor-core
// GEMM, reference): pointers, sizes and strides in elements, nothing else.
//
//   C[b] = act(op(A[b]) · op(B[b]) + bias)   for b < batch
//
// A is stored row-major as (M, K), or as (K, M) when trans_a; B as (K, N), or
// (N, K) when trans_b; C is row-major (M, N). A batch stride of 0 broadcasts
// that operand over the batch. Row strides may be anything >= 0 (0 repeats a
// row); the column stride is always 1 — the Python layer swaps a column-major
// operand into its transposed flag instead of copying it.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace pyfastnn {
namespace cuda {

struct GemmArgs {
  const void* a = nullptr;
  const void* b = nullptr;
  void* c = nullptr;
  const float* bias = nullptr;  // (N,) float32 for every input dtype, or null
  std::int64_t m = 0, n = 0, k = 0, batch = 1;
  std::int64_t lda = 0, ldb = 0, ldc = 0;  // row strides of the stored matrices
  std::int64_t batch_stride_a = 0, batch_stride_b = 0, batch_stride_c = 0;
  bool trans_a = false, trans_b = false;
  int act = 0;  // 0 none, 1 relu, 2 gelu (erf), 3 sigmoid, 4 tanh — bias_act's codes
  int variant = 0;  // kernel configuration where a launcher has several (SgemmVariant); 0: its default
};

// SGEMM configurations (see sgemm.cu), kept selectable so a GPU run can time both.
enum SgemmVariant : int { kSgemmDefault = 0, kSgemmTwoBlocksK8 = 1, kSgemmOneBlockK16 = 2 };

// Sizes the kernels index with 32-bit ints (rows, columns, k); the launchers
// refuse anything larger with cudaErrorInvalidValue.
constexpr std::int64_t kGemmMaxDim = (std::int64_t{1} << 31) - 1024;

}  // namespace cuda
}  // namespace pyfastnn
