// Elementwise bias + activation: a grid-stride loop over the flat index, one
// element per thread per step. Memory-bound; kept plain until it is measured
// on a GPU.
#include "cuda/activation/bias_act.h"
#include "cuda/activation/activate.cuh"

namespace pyfastnn {
namespace cuda {

namespace {

__global__ void bias_act_kernel(const float* __restrict__ x, const float* __restrict__ bias, float* y,
                                 std::int64_t total, std::int64_t cols, int act) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    float v = x[i];
    if (bias) v += bias[i % cols];
    y[i] = activate(v, act);
  }
}

}  // namespace

cudaError_t bias_act_f32(const float* x, const float* bias, float* y, std::int64_t rows, std::int64_t cols,
                         int act, cudaStream_t stream) {
  const std::int64_t total = rows * cols;
  if (total == 0) return cudaSuccess;
  constexpr int kThreads = 256;
  const std::int64_t want = (total + kThreads - 1) / kThreads;
  const int blocks = static_cast<int>(want < 65535 ? want : 65535);
  bias_act_kernel<<<blocks, kThreads, 0, stream>>>(x, bias, y, total, cols, act);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace pyfastnn
