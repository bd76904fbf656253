#pragma once
#include <pybind11/numpy.h>

namespace pyfastnn {
namespace ops {

pybind11::array conv2d(const pybind11::object& x, const pybind11::object& w, const pybind11::object& bias,
                       const pybind11::object& stride, const pybind11::object& padding,
                       const pybind11::object& dilation, const pybind11::object& groups);

pybind11::tuple conv2d_backward(const pybind11::object& grad_y, const pybind11::object& x,
                                const pybind11::object& w, const pybind11::object& stride,
                                const pybind11::object& padding, const pybind11::object& dilation,
                                const pybind11::object& groups, bool need_grad_x = true,
                                bool need_grad_w = true);

}  // namespace ops
}  // namespace pyfastnn
