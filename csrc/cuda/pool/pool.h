// 2-D max and average pooling on the GPU, float32 NCHW planes, PyTorch's
// semantics (as the CPU kernels in cpu/pool/): padding is -inf for max and
// zeros counted in the divisor for average; max indices are int64 flat
// positions iy * W + ix within the input plane. Plain C++ declarations.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace pyfastnn {
namespace cuda {

struct PoolShape {
  std::int64_t planes, H, W, KH, KW, SH, SW, PH, PW, OH, OW;
};

// One thread per output; the first NaN in a window wins (value and index).
cudaError_t max_pool2d_forward(const PoolShape& s, const float* x, float* y, std::int64_t* indices,
                               cudaStream_t stream);

cudaError_t avg_pool2d_forward(const PoolShape& s, const float* x, float* y, cudaStream_t stream);

// gx (planes, H, W) is overwritten. Each grad_y element is added at its index;
// an index outside [0, H*W) is skipped and sets *bad_index (a device int the
// caller zeroes and reads). deterministic: one thread per plane adds the
// plane's outputs in order (the CPU's order, bit-identical to it); otherwise
// one thread per output with atomicAdd (the order of the adds into an input
// that several overlapping windows picked is then unspecified).
cudaError_t max_pool2d_backward(const PoolShape& s, const float* grad_y, const std::int64_t* indices, float* gx,
                                int* bad_index, bool deterministic, cudaStream_t stream);

// One thread per input element gathers the outputs whose windows cover it,
// in output order (no atomics; the same sums as the CPU's scatter).
cudaError_t avg_pool2d_backward(const PoolShape& s, const float* grad_y, float* gx, cudaStream_t stream);

}  // namespace cuda
}  // namespace pyfastnn
