#pragma once
#include <pybind11/numpy.h>

namespace pyfastnn {
namespace ops {

namespace py = pybind11;

py::tuple max_pool2d(const py::object& x, const py::object& kernel_size, const py::object& stride,
                     const py::object& padding);
py::array max_pool2d_backward(const py::object& grad_y, const py::object& indices, const py::object& x_shape);
py::array avg_pool2d(const py::object& x, const py::object& kernel_size, const py::object& stride,
                     const py::object& padding);
py::tuple adaptive_max_pool2d(const py::object& x, const py::object& output_size);
py::array adaptive_max_pool2d_backward(const py::object& grad_y, const py::object& indices, const py::object& x_shape);
py::array adaptive_avg_pool2d(const py::object& x, const py::object& output_size);
py::array adaptive_avg_pool2d_backward(const py::object& grad_y, const py::object& x_shape);
py::array avg_pool2d_backward(const py::object& grad_y, const py::object& x_shape, const py::object& kernel_size,
                              const py::object& stride, const py::object& padding);

}  // namespace ops
}  // namespace pyfastnn
