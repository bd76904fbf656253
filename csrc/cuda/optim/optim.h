// Fused optimizer steps on the GPU (torch.optim.SGD, Adam/AdamW, RMSprop),
// float32, in place, one pass over each parameter and its state. Plain C++
// declarations for the bindings; the hyper-parameters arrive as doubles (as
// torch receives Python floats) and are rounded to float once, like the CPU's.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace pyfastnn {
namespace cuda {

struct SgdHyper {
  double lr = 0, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
  bool first_step = false;  // the momentum buffer starts as the gradient
};

struct AdamHyper {
  double lr = 0, beta1 = 0, beta2 = 0, eps = 0, weight_decay = 0;
  double step = 1;  // 1-based, after the increment
  bool decoupled_weight_decay = false;
  bool amsgrad = false;
};

struct RmspropHyper {
  double lr = 0, alpha = 0, eps = 0, weight_decay = 0, momentum = 0;
  bool centered = false;
};

// momentum_buf may be null when momentum == 0.
cudaError_t sgd_step(float* param, const float* grad, float* momentum_buf, std::int64_t n, const SgdHyper& h,
                     cudaStream_t stream);
// max_exp_avg_sq is used only with amsgrad.
cudaError_t adam_step(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq,
                      std::int64_t n, const AdamHyper& h, cudaStream_t stream);
// grad_avg is used only when centered, momentum_buf only when momentum > 0.
cudaError_t rmsprop_step(float* param, const float* grad, float* square_avg, float* grad_avg, float* momentum_buf,
                         std::int64_t n, const RmspropHyper& h, cudaStream_t stream);

}  // namespace cuda
}  // namespace pyfastnn
