#pragma once
#include <pybind11/numpy.h>

namespace pyfastnn {
namespace ops {

namespace py = pybind11;

py::array activation(const py::object& x, const std::string& kind);
py::array activation_backward(const py::object& grad_y, const py::object& saved, const std::string& kind);
py::tuple dropout(const py::object& x, double p, std::uint64_t seed);
py::array dropout_backward(const py::object& grad_y, const py::object& mask, double p);

}  // namespace ops
}  // namespace pyfastnn
