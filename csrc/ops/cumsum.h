// cumsum (csrc/ops/cumsum.cpp).
#pragma once
#include <pybind11/numpy.h>

namespace pyfastnn {
namespace ops {

namespace py = pybind11;

py::array cumsum(const py::object& x, const py::object& dim, bool reverse);

}  // namespace ops
}  // namespace pyfastnn
