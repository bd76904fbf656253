// topk and sort (csrc/ops/sort.cpp).
#pragma once
#include <pybind11/numpy.h>

namespace pyfastnn {
namespace ops {

namespace py = pybind11;

py::tuple topk(const py::object& x, const py::object& k, const py::object& dim, bool largest);
py::tuple sort(const py::object& x, const py::object& dim, bool descending);

}  // namespace ops
}  // namespace pyfastnn
