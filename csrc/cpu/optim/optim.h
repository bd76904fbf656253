// Fused optimizer steps per ISA level: one pass over a flat range of a
// parameter and its state, PyTorch's update formulas (torch.optim.SGD, Adam,
// AdamW, RMSprop with maximize=False). Callers split the range over threads.
#pragma once
#include <cstdint>

#include "runtime/cpu_info.h"

namespace pyfastnn {
namespace cpu {

// Hyper-parameters arrive as doubles (Python floats, as torch receives them);
// the kernels round the derived scalars to T once, like torch's float kernels.
struct SgdParams {
  double lr = 0, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
  bool first_step = false;  // the momentum buffer starts as the gradient
};

struct AdamParams {
  double lr = 0, beta1 = 0, beta2 = 0, eps = 0, weight_decay = 0;
  double step = 1;  // 1-based, after the increment
  bool decoupled_weight_decay = false;
  bool amsgrad = false;
};

struct RmspropParams {
  double lr = 0, alpha = 0, eps = 0, weight_decay = 0, momentum = 0;
  bool centered = false;
};

template <class T>
struct OptimKernels {
  // momentum_buf may be null when momentum == 0.
  void (*sgd)(T* param, const T* grad, T* momentum_buf, std::int64_t n, const SgdParams& p);
  // max_exp_avg_sq is used only with amsgrad.
  void (*adam)(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, std::int64_t n,
               const AdamParams& p);
  // grad_avg is used only when centered, momentum_buf only when momentum > 0.
  void (*rmsprop)(T* param, const T* grad, T* square_avg, T* grad_avg, T* momentum_buf, std::int64_t n,
                  const RmspropParams& p);
};

template <class T>
const OptimKernels<T>& optim_kernels(CpuIsa isa);

void optim_kernels_scalar(OptimKernels<float>* f32, OptimKernels<double>* f64);
void optim_kernels_avx2(OptimKernels<float>* f32, OptimKernels<double>* f64);
void optim_kernels_avx512(OptimKernels<float>* f32, OptimKernels<double>* f64);

}  // namespace cpu
}  // namespace pyfastnn
