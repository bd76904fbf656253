// Ops over the last dimension(s): softmax/log_softmax, layer_norm,
// cross_entropy (each in its own .cpp).
#pragma once
#include <pybind11/numpy.h>

namespace pyfastnn {
namespace ops {

namespace py = pybind11;

py::array softmax(const py::object& x, bool log);
py::array softmax_backward(const py::object& grad_y, const py::object& y, bool log);
py::tuple layer_norm(const py::object& x, std::int64_t normalized_size, const py::object& weight,
                     const py::object& bias, double eps);
py::tuple layer_norm_backward(const py::object& grad_y, const py::object& x, const py::object& mean,
                              const py::object& rstd, const py::object& weight, std::int64_t normalized_size,
                              bool weight_grads);
double cross_entropy(const py::object& logits, const py::object& target, std::int64_t ignore_index,
                     double label_smoothing);
py::array cross_entropy_backward(const py::object& logits, const py::object& target, double grad,
                                 std::int64_t ignore_index, double label_smoothing);

}  // namespace ops
}  // namespace pyfastnn
