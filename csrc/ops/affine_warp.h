#pragma once
#include <pybind11/numpy.h>

namespace pyfastnn {
namespace ops {

pybind11::array affine_warp(const pybind11::object& x, const pybind11::object& matrix,
                            const pybind11::object& output_size, int order, const std::string& fill_mode,
                            double cval, const pybind11::object& flip_cols, const pybind11::object& flip_rows);

}  // namespace ops
}  // namespace pyfastnn
