// y = act(x + bias) over a row-major (rows, cols) float32 matrix on the GPU.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace pyfastnn {
namespace cuda {

// act: 0 none, 1 relu, 2 gelu, 3 sigmoid, 4 tanh, 5 gelu_tanh, 6 silu (pyfastnn::Activation).
// bias may be null. x and y may alias. Returns the launch status.
cudaError_t bias_act_f32(const float* x, const float* bias, float* y, std::int64_t rows, std::int64_t cols,
                         int act, cudaStream_t stream);

}  // namespace cuda
}  // namespace pyfastnn
