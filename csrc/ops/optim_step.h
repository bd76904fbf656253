#pragma once
#include <pybind11/pybind11.h>

namespace pyfastnn {
namespace ops {

// In-place optimizer steps; every array is updated where it lies (no copies),
// so they must be C-contiguous, writable where written, and all of param's
// shape and dtype. Hyper-parameters are Python numbers.
void sgd_step(const pybind11::object& param, const pybind11::object& grad, const pybind11::object& momentum_buf,
              const pybind11::object& lr, const pybind11::object& momentum, const pybind11::object& dampening,
              bool nesterov, const pybind11::object& weight_decay, bool first_step);

void adam_step(const pybind11::object& param, const pybind11::object& grad, const pybind11::object& exp_avg,
               const pybind11::object& exp_avg_sq, const pybind11::object& step, const pybind11::object& lr,
               const pybind11::object& beta1, const pybind11::object& beta2, const pybind11::object& eps,
               const pybind11::object& weight_decay, bool decoupled_weight_decay, bool amsgrad,
               const pybind11::object& max_exp_avg_sq);

void rmsprop_step(const pybind11::object& param, const pybind11::object& grad, const pybind11::object& square_avg,
                  const pybind11::object& lr, const pybind11::object& alpha, const pybind11::object& eps,
                  const pybind11::object& weight_decay, const pybind11::object& momentum,
                  const pybind11::object& momentum_buf, bool centered, const pybind11::object& grad_avg);

}  // namespace ops
}  // namespace pyfastnn
