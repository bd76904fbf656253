// affine_warp(x, matrix, output_size, order, fill_mode, cval, flip_cols, flip_rows):
// checks, allocation, then the warp kernel without the GIL.
#include "ops/affine_warp.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/checks.h"
#include "cpu/image/affine_warp.h"
#include "runtime/thread_pool.h"

namespace pyfastnn {
namespace ops {

namespace {

using namespace pybind11::literals;

const std::string kOp = "affine_warp";

cpu::FillMode parse_fill_mode(const std::string& s) {
  if (s == "constant") return cpu::FillMode::constant;
  if (s == "nearest") return cpu::FillMode::nearest;
  if (s == "reflect") return cpu::FillMode::reflect;
  if (s == "wrap") return cpu::FillMode::wrap;
  raise_value_error(kOp, "argument 'fill_mode' must be one of 'constant', 'nearest', 'reflect', 'wrap', got '" + s +
                             "'");
}

// Per-image flags from an optional bool array of n entries (or a bool for a single image).
void add_flags(const py::object& obj, const char* name, std::int64_t n, std::uint8_t bit,
               std::vector<std::uint8_t>* flags) {
  if (obj.is_none()) return;
  py::array a = py::array::ensure(obj);
  if (!a || (a.dtype().kind() != 'b' && a.dtype().kind() != 'i' && a.dtype().kind() != 'u'))
    raise_type_error(kOp, std::string("argument '") + name + "' must be None or an array of bools, got " +
                              py::str(py::repr(obj)).cast<std::string>());
  a = py::array::ensure(py::module_::import("numpy").attr("ascontiguousarray")(a, "dtype"_a = "bool"));
  if (a.size() != n)
    raise_value_error(kOp, std::string("argument '") + name + "' must have one entry per image (" + std::to_string(n) +
                               "), got shape " + shape_str(a));
  const bool* p = static_cast<const bool*>(a.data());
  for (std::int64_t i = 0; i < n; ++i)
    if (p[i]) (*flags)[i] |= bit;
}

template <class T>
py::array run(const py::array& x, const cpu::WarpGeometry& g, const std::vector<py::ssize_t>& out_shape,
              const double* matrices, const std::vector<std::uint8_t>& flags) {
  py::array_t<T> y(out_shape);
  T* out = y.mutable_data();
  const T* in = static_cast<const T*>(x.data());
  const bool any_flag = std::any_of(flags.begin(), flags.end(), [](std::uint8_t f) { return f != 0; });
  py::gil_scoped_release release;
  cpu::affine_warp<T>(g, in, matrices, any_flag ? flags.data() : nullptr, out, get_num_threads());
  return std::move(y);
}

}  // namespace

py::array affine_warp(const py::object& x_obj, const py::object& matrix_obj, const py::object& output_size, int order,
                      const std::string& fill_mode, double cval, const py::object& flip_cols,
                      const py::object& flip_rows) {
  py::array x = require_array(kOp, "x", x_obj);
  const DType dt = require_float(kOp, "x", x);
  require_ndim(kOp, "x", x, 3, 4);
  const bool batched = x.ndim() == 4;
  cpu::WarpGeometry g{};
  g.n = batched ? x.shape(0) : 1;
  g.h = x.shape(batched ? 1 : 0);
  g.w = x.shape(batched ? 2 : 1);
  g.c = x.shape(batched ? 3 : 2);
  if (g.h < 1 || g.w < 1)
    raise_value_error(kOp, "argument 'x' must have images of at least 1x1 pixels, got shape " + shape_str(x));
  if (order != 0 && order != 1)
    raise_value_error(kOp, "argument 'order' must be 0 (nearest) or 1 (bilinear), got " + std::to_string(order));
  g.order = order;
  g.mode = parse_fill_mode(fill_mode);
  g.cval = cval;
  g.oh = g.h;
  g.ow = g.w;
  if (!output_size.is_none()) parse_int_pair(kOp, "output_size", output_size, 1, &g.oh, &g.ow);

  py::array m = require_array(kOp, "matrix", matrix_obj);
  if (dtype_of(m) != DType::f64)
    raise_type_error(kOp, "argument 'matrix' must have dtype float64, got " + dtype_str(m));
  const bool per_image = m.ndim() == 3;
  if (!((m.ndim() == 2 && m.shape(0) == 2 && m.shape(1) == 3) ||
        (per_image && m.shape(0) == g.n && m.shape(1) == 2 && m.shape(2) == 3)))
    raise_value_error(kOp, "argument 'matrix' must have shape (2, 3)" +
                               (batched ? " or (" + std::to_string(g.n) + ", 2, 3)" : std::string()) + ", got " +
                               shape_str(m));
  m = c_contiguous(m);
  const double* mp = static_cast<const double*>(m.data());
  std::vector<double> matrices(static_cast<std::size_t>(6 * g.n));
  for (std::int64_t i = 0; i < g.n; ++i)
    for (int k = 0; k < 6; ++k) {
      const double v = mp[(per_image ? 6 * i : 0) + k];
      if (!std::isfinite(v))
        raise_value_error(kOp, "argument 'matrix' must be finite, got " + std::to_string(v) + " for image " +
                                   std::to_string(i));
      matrices[6 * i + k] = v;
    }
  std::vector<std::uint8_t> flags(static_cast<std::size_t>(g.n), 0);
  add_flags(flip_cols, "flip_cols", g.n, cpu::kWarpFlipCols, &flags);
  add_flags(flip_rows, "flip_rows", g.n, cpu::kWarpFlipRows, &flags);

  checked_numel(kOp, "output", {g.n, g.oh, g.ow, g.c}, static_cast<std::size_t>(x.itemsize()));
  std::vector<py::ssize_t> out_shape;
  if (batched) out_shape.push_back(g.n);
  out_shape.insert(out_shape.end(), {g.oh, g.ow, g.c});
  x = c_contiguous(x);
  if (dt == DType::f32) return run<float>(x, g, out_shape, matrices.data(), flags);
  return run<double>(x, g, out_shape, matrices.data(), flags);
}

}  // namespace ops
}  // namespace pyfastnn
