// Reference GEMM: a grid-stride loop over (batch, row, column), each output a
// float32 dot product in k order, then bias, activation and one rounding to
// the output dtype — the definition the tiled kernels must agree with.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/gemm/gemm_common.cuh"
#include "cuda/gemm/gemm_reference.h"

namespace pyfastnn {
namespace cuda {

namespace {

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

template <typename T>
__global__ void gemm_reference_kernel(GemmArgs p) {
  const T* a = static_cast<const T*>(p.a);
  const T* b = static_cast<const T*>(p.b);
  T* c = static_cast<T*>(p.c);
  const std::int64_t per_batch = p.m * p.n;
  const std::int64_t total = per_batch * p.batch;
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const std::int64_t batch = i / per_batch;
    const std::int64_t row = (i % per_batch) / p.n;
    const std::int64_t col = i % p.n;
    const T* a_b = a + batch * p.batch_stride_a;
    const T* b_b = b + batch * p.batch_stride_b;
    float sum = 0.f;
    for (std::int64_t k = 0; k < p.k; ++k) {
      const float x = to_float(p.trans_a ? a_b[k * p.lda + row] : a_b[row * p.lda + k]);
      const float y = to_float(p.trans_b ? b_b[col * p.ldb + k] : b_b[k * p.ldb + col]);
      sum = fmaf(x, y, sum);
    }
    if (p.bias) sum += p.bias[col];
    c[batch * p.batch_stride_c + row * p.ldc + col] = from_float<T>(gemm_detail::activate(sum, p.act));
  }
}

template <typename T>
cudaError_t launch_reference(const GemmArgs& p, cudaStream_t stream) {
  const cudaError_t err = gemm_detail::validate(p);
  if (err != cudaSuccess) return err;
  const std::int64_t total = p.m * p.n * p.batch;
  if (total == 0) return cudaSuccess;
  constexpr int kThreads = 256;
  const std::int64_t want = (total + kThreads - 1) / kThreads;
  const int blocks = static_cast<int>(want < 65535 ? want : 65535);
  gemm_reference_kernel<T><<<blocks, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

cudaError_t gemm_reference_f32(const GemmArgs& args, cudaStream_t stream) {
  return launch_reference<float>(args, stream);
}
cudaError_t gemm_reference_f16(const GemmArgs& args, cudaStream_t stream) {
  return launch_reference<__half>(args, stream);
}
cudaError_t gemm_reference_bf16(const GemmArgs& args, cudaStream_t stream) {
  return launch_reference<__nv_bfloat16>(args, stream);
}

}  // namespace cuda
}  // namespace pyfastnn
