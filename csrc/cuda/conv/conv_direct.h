// Direct kernels for C/groups == 1 (depthwise convolutions, any channel
// multiplier K/groups), where a GEMM per group would be 1 channel wide.
// Internal to csrc/cuda/conv: the launchers in conv.h call them.
#pragma once
#include <cuda_runtime.h>

#include "cuda/conv/conv.h"

namespace pyfastnn {
namespace cuda {
namespace conv_detail {

// One thread per output element, the filter taps in (r, s) order.
cudaError_t depthwise_forward(const ConvShape& s, const float* x, const float* w, const float* bias, float* y,
                              cudaStream_t stream);
// One thread per input element, gathering the outputs whose windows cover it.
cudaError_t depthwise_backward_data(const ConvShape& s, const float* grad_y, const float* w, float* grad_x,
                                    cudaStream_t stream);
// One block per (output channel, tap): a fixed-order tree sum over N*P*Q.
cudaError_t depthwise_backward_filter(const ConvShape& s, const float* grad_y, const float* x, float* grad_w,
                                      cudaStream_t stream);

}  // namespace conv_detail
}  // namespace cuda
}  // namespace pyfastnn
