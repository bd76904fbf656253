// group_norm over NC* inputs like torch.native_group_norm: (y, mean, rstd)
// with mean/rstd (N, num_groups); the backward pass gives (grad_x,
// grad_weight, grad_bias). Checks -> contiguous inputs -> cpu/norm without
// the GIL.
#include "ops/group_norm.h"

#include <cmath>
#include <vector>

#include "common/checks.h"
#include "cpu/norm/norm.h"

namespace pyfastnn {
namespace ops {

namespace {

struct Dims {
  std::int64_t N, C, HW, G;
};

Dims dims_of(const std::string& op, const py::array& x, const py::object& groups_obj) {
  if (x.ndim() < 2)
    raise_value_error(op, "argument 'x' must be at least 2-D (N, C, *), got shape " + shape_str(x));
  Dims d{x.shape(0), x.shape(1), 1, parse_int(op, "num_groups", groups_obj)};
  for (py::ssize_t k = 2; k < x.ndim(); ++k) d.HW *= x.shape(k);
  if (d.G < 1) raise_value_error(op, "argument 'num_groups' must be >= 1, got " + std::to_string(d.G));
  if (d.C % d.G != 0)
    raise_value_error(op, "argument 'num_groups' (" + std::to_string(d.G) + ") must divide the " +
                              std::to_string(d.C) + " channels of 'x'");
  return d;
}

py::array channel_vector(const std::string& op, const char* name, const py::object& obj, const py::array& x,
                         std::int64_t C) {
  if (obj.is_none()) return py::array();
  py::array v = require_array(op, name, obj);
  if (dtype_of(v) != dtype_of(x))
    raise_type_error(op, std::string("argument '") + name + "' must have dtype " + dtype_str(x) + " like 'x', got " +
                             dtype_str(v));
  if (v.ndim() != 1 || v.shape(0) != C)
    raise_value_error(op, std::string("argument '") + name + "' must have shape (" + std::to_string(C) +
                              ",) (one value per channel), got " + shape_str(v));
  return c_contiguous(v);
}

template <class T>
const T* ptr_or_null(const py::object& given, const py::array& a) {
  return given.is_none() ? nullptr : static_cast<const T*>(a.data());
}

}  // namespace

py::tuple group_norm(const py::object& x_obj, const py::object& groups_obj, const py::object& w_obj,
                     const py::object& b_obj, double eps) {
  const std::string op = "group_norm";
  py::array x = require_array(op, "x", x_obj);
  const DType dt = require_float(op, "x", x);
  const Dims d = dims_of(op, x, groups_obj);
  if (!(eps >= 0) || !std::isfinite(eps))
    raise_value_error(op, "argument 'eps' must be a finite number >= 0, got " + std::to_string(eps));
  py::array w = channel_vector(op, "weight", w_obj, x, d.C), b = channel_vector(op, "bias", b_obj, x, d.C);
  x = c_contiguous(x);
  py::array y(x.dtype(), std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  const std::vector<py::ssize_t> stat_shape{static_cast<py::ssize_t>(d.N), static_cast<py::ssize_t>(d.G)};
  py::array mean(x.dtype(), stat_shape), rstd(x.dtype(), stat_shape);
  auto run = [&](auto zero) {
    using T = decltype(zero);
    const T *xp = static_cast<const T*>(x.data()), *wp = ptr_or_null<T>(w_obj, w), *bp = ptr_or_null<T>(b_obj, b);
    T *yp = static_cast<T*>(y.mutable_data()), *mp = static_cast<T*>(mean.mutable_data()),
      *rp = static_cast<T*>(rstd.mutable_data());
    py::gil_scoped_release release;
    cpu::group_norm_forward<T>(xp, wp, bp, yp, mp, rp, d.N, d.C, d.HW, d.G, eps);
  };
  dt == DType::f32 ? run(0.0f) : run(0.0);
  return py::make_tuple(y, mean, rstd);
}

py::tuple group_norm_backward(const py::object& g_obj, const py::object& x_obj, const py::object& mean_obj,
                              const py::object& rstd_obj, const py::object& groups_obj, const py::object& w_obj) {
  const std::string op = "group_norm_backward";
  py::array g = require_array(op, "grad_y", g_obj);
  const DType dt = require_float(op, "grad_y", g);
  py::array x = require_array(op, "x", x_obj);
  require_like(op, "grad_y", g, "x", x);
  const Dims d = dims_of(op, x, groups_obj);
  py::array mean = require_array(op, "mean", mean_obj), rstd = require_array(op, "rstd", rstd_obj);
  for (const auto& [name, a] : {std::pair<const char*, py::array&>{"mean", mean}, {"rstd", rstd}}) {
    if (dtype_of(a) != dt)
      raise_type_error(op, std::string("argument '") + name + "' must have dtype " + dtype_str(g) + ", got " +
                               dtype_str(a));
    if (a.size() != d.N * d.G)
      raise_value_error(op, std::string("argument '") + name + "' must have N * num_groups = " +
                                std::to_string(d.N * d.G) + " values (shape (N, num_groups)), got shape " +
                                shape_str(a));
  }
  py::array w = channel_vector(op, "weight", w_obj, x, d.C);
  g = c_contiguous(g);
  x = c_contiguous(x);
  mean = c_contiguous(mean);
  rstd = c_contiguous(rstd);
  py::array gx(x.dtype(), std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  const std::vector<py::ssize_t> cshape{static_cast<py::ssize_t>(d.C)};
  py::array gw(x.dtype(), cshape), gb(x.dtype(), cshape);
  auto run = [&](auto zero) {
    using T = decltype(zero);
    const T *gp = static_cast<const T*>(g.data()), *xp = static_cast<const T*>(x.data()),
            *mp = static_cast<const T*>(mean.data()), *rp = static_cast<const T*>(rstd.data()),
            *wp = ptr_or_null<T>(w_obj, w);
    T *gxp = static_cast<T*>(gx.mutable_data()), *gwp = static_cast<T*>(gw.mutable_data()),
      *gbp = static_cast<T*>(gb.mutable_data());
    py::gil_scoped_release release;
    cpu::group_norm_backward<T>(gp, xp, mp, rp, wp, gxp, gwp, gbp, d.N, d.C, d.HW, d.G);
  };
  dt == DType::f32 ? run(0.0f) : run(0.0);
  return py::make_tuple(gx, gw, gb);
}

}  // namespace ops
}  // namespace pyfastnn
