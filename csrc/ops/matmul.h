#pragma once
#include <pybind11/numpy.h>

namespace pyfastnn {
namespace ops {

// matmul(a, b, bias, activation, trans_a, trans_b): checks, allocates, runs
// the CPU GEMM with the GIL released.
pybind11::array matmul(const pybind11::object& a, const pybind11::object& b, const pybind11::object& bias,
                       const pybind11::object& activation, bool trans_a, bool trans_b);

}  // namespace ops
}  // namespace pyfastnn
