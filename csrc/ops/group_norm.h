// group_norm and its backward pass (csrc/ops/group_norm.cpp).
#pragma once
#include <pybind11/numpy.h>

namespace pyfastnn {
namespace ops {

namespace py = pybind11;

py::tuple group_norm(const py::object& x, const py::object& num_groups, const py::object& weight,
                     const py::object& bias, double eps);
py::tuple group_norm_backward(const py::object& grad_y, const py::object& x, const py::object& mean,
                              const py::object& rstd, const py::object& num_groups, const py::object& weight);

}  // namespace ops
}  // namespace pyfastnn
