#pragma once
#include <pybind11/numpy.h>

namespace pyfastnn {
namespace ops {

namespace py = pybind11;

// -> (hs (T+1,B,H), cs (T+1,B,H), gates (T,B,4H))
py::tuple lstm(const py::object& x, const py::object& h0, const py::object& c0, const py::object& w_ih,
               const py::object& w_hh, const py::object& b_ih, const py::object& b_hh);
// -> (grad_x, grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_b)
py::tuple lstm_backward(const py::object& grad_y, const py::object& grad_hT, const py::object& grad_cT,
                        const py::object& x, const py::object& hs, const py::object& cs, const py::object& gates,
                        const py::object& w_ih, const py::object& w_hh);

}  // namespace ops
}  // namespace pyfastnn
