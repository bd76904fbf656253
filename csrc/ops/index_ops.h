// Indexing ops (each checks its arguments; csrc/ops/index_ops.cpp).
#pragma once
#include <pybind11/numpy.h>

namespace pyfastnn {
namespace ops {

namespace py = pybind11;

py::array embedding(const py::object& weight, const py::object& indices, const py::object& padding_idx);
py::array embedding_backward(const py::object& grad_y, const py::object& indices, const py::object& num_weights,
                             const py::object& padding_idx);
py::array index_select(const py::object& x, const py::object& dim, const py::object& index);
py::array gather(const py::object& x, const py::object& dim, const py::object& index);
py::array scatter_add(const py::object& x, const py::object& dim, const py::object& index, const py::object& src);

}  // namespace ops
}  // namespace pyfastnn
