// The per-step LSTM kernels (PyTorch's gate order i, f, g, o) that sit
// between the GEMMs of pyfastnn/cuda_ops/nn.py: the fused gate nonlinearities
// and cell update, and their backward pass. float32, contiguous (B, H) / (B, 4H)
// arrays. Plain C++ declarations for the bindings.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace pyfastnn {
namespace cuda {

// gates (B, 4H) holds x.W_ih^T + bias on entry; hproj (B, 4H) = h.W_hh^T (may
// be null: zero). gates <- activated gates (sigmoid i, f, o; tanh g);
// c = f * c_prev + i * g; h = o * tanh(c).
cudaError_t lstm_cell_forward(float* gates, const float* hproj, const float* c_prev, float* c, float* h,
                              std::int64_t B, std::int64_t H, cudaStream_t stream);

// dh = dh_next (the recurrent part, (B, H)) + grad_y (may be null); dc in: the
// carried cell gradient, out: the one for c_prev. gates are the activated
// gates of the step, c its cell state. Writes dG (B, 4H), the pre-activation
// gradients.
cudaError_t lstm_cell_backward(const float* dh_next, const float* grad_y, float* dc, const float* gates,
                               const float* c_prev, const float* c, float* dG, std::int64_t B, std::int64_t H,
                               cudaStream_t stream);

}  // namespace cuda
}  // namespace pyfastnn
