#pragma once
#include <pybind11/numpy.h>

namespace pyfastnn {
namespace ops {

pybind11::array bias_activation(const pybind11::object& x, const pybind11::object& bias,
                                const pybind11::object& activation);

}  // namespace ops
}  // namespace pyfastnn
