#pragma once
#include <pybind11/numpy.h>

namespace pyfastnn {
namespace ops {

namespace py = pybind11;

// mask: None, or already broadcast to (B, H, Nq, Nk) (zero strides allowed).
py::tuple attention(const py::object& q, const py::object& k, const py::object& v, bool causal,
                    const py::object& mask, double scale);
py::tuple attention_backward(const py::object& grad_out, const py::object& q, const py::object& k,
                             const py::object& v, const py::object& out, const py::object& lse, bool causal,
                             const py::object& mask, double scale);

}  // namespace ops
}  // namespace pyfastnn
