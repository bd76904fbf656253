// Elementwise activations, their gradients, and dropout on the GPU. Plain C++
// declarations (the bindings are compiled by the host compiler); pointers are
// device pointers of the dtype given by `dtype`, contiguous, with `n` elements.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace pyfastnn {
namespace cuda {

// Storage dtypes of the activation and softmax kernels (math is float32).
enum class StorageType : int { f32 = 0, f16 = 1 };

// act: 1 relu, 2 gelu (erf form), 3 sigmoid, 4 tanh, 5 gelu_tanh, 6 silu (pyfastnn::Activation).
// y = act(x); x and y must not overlap.
cudaError_t activation_forward(const void* x, void* y, std::int64_t n, int act, StorageType dtype,
                               cudaStream_t stream);

// gx = grad_y * act'(.) where saved is y for sigmoid/tanh and x for the others.
cudaError_t activation_backward(const void* grad_y, const void* saved, void* gx, std::int64_t n, int act,
                                StorageType dtype, cudaStream_t stream);

// The same per-element math as activation_forward/backward, one element per
// thread with no vector loads: the reference the tests compare the fast path with.
cudaError_t activation_forward_reference(const void* x, void* y, std::int64_t n, int act, StorageType dtype,
                                         cudaStream_t stream);
cudaError_t activation_backward_reference(const void* grad_y, const void* saved, void* gx, std::int64_t n, int act,
                                          StorageType dtype, cudaStream_t stream);

// keep[i] = (splitmix64(seed ^ splitmix64(i)) >> 32) >= threshold, the CPU
// kernel's counter-based rule, so masks are bit-identical to the CPU ones;
// y = keep ? x * scale : 0, mask[i] = keep (uint8).
cudaError_t dropout_forward(const void* x, void* y, std::uint8_t* mask, std::int64_t n, std::uint64_t seed,
                            std::uint64_t threshold, float scale, StorageType dtype, cudaStream_t stream);

// gx = mask ? grad_y * scale : 0 (mask bytes: uint8 or bool, nonzero = kept).
cudaError_t dropout_backward(const void* grad_y, const std::uint8_t* mask, void* gx, std::int64_t n, float scale,
                             StorageType dtype, cudaStream_t stream);

}  // namespace cuda
}  // namespace pyfastnn
