// lstm / lstm_backward: PyTorch's shapes (x (T, B, I), h0/c0 (B, H),
// w_ih (4H, I), w_hh (4H, H), biases (4H)), checked here.
#include "ops/lstm.h"

#include <cstring>

#include "common/checks.h"
#include "cpu/lstm/lstm.h"

namespace pyfastnn {
namespace ops {

namespace {

void require_shape(const std::string& op, const char* name, const py::array& a, const std::vector<std::int64_t>& want) {
  bool ok = a.ndim() == static_cast<py::ssize_t>(want.size());
  for (std::size_t i = 0; ok && i < want.size(); ++i) ok = a.shape(static_cast<py::ssize_t>(i)) == want[i];
  if (!ok) {
    std::string s = "(";
    for (std::size_t i = 0; i < want.size(); ++i) s += (i ? ", " : "") + std::to_string(want[i]);
    raise_value_error(op, std::string("argument '") + name + "' must have shape " + s + (want.size() == 1 ? ",)" : ")") +
                              ", got " + shape_str(a));
  }
}

py::array float_arg(const std::string& op, const char* name, const py::object& obj, DType dt, const py::array& ref) {
  py::array a = require_array(op, name, obj);
  if (dtype_of(a) != dt)
    raise_type_error(op, std::string("argument '") + name + "' must have dtype " + dtype_str(ref) + " like 'x', got " +
                             dtype_str(a));
  return a;
}

// x (T, B, I), w_ih (4H, I), w_hh (4H, H): checked, with the shape they define.
struct Core {
  py::array x, w_ih, w_hh;
  DType dt;
  cpu::LstmShape s;
};

Core check_core(const std::string& op, const py::object& x_obj, const py::object& wih_obj, const py::object& whh_obj) {
  Core c;
  c.x = require_array(op, "x", x_obj);
  c.dt = require_float(op, "x", c.x);
  if (c.x.ndim() != 3) raise_value_error(op, "argument 'x' must be 3-D (T, B, I), got shape " + shape_str(c.x));
  c.w_ih = float_arg(op, "w_ih", wih_obj, c.dt, c.x);
  c.w_hh = float_arg(op, "w_hh", whh_obj, c.dt, c.x);
  if (c.w_ih.ndim() != 2 || c.w_ih.shape(0) % 4 != 0)
    raise_value_error(op, "argument 'w_ih' must be 2-D (4*H, I), got shape " + shape_str(c.w_ih));
  c.s = cpu::LstmShape{c.x.shape(0), c.x.shape(1), c.x.shape(2), c.w_ih.shape(0) / 4};
  require_shape(op, "w_ih", c.w_ih, {4 * c.s.H, c.s.I});
  require_shape(op, "w_hh", c.w_hh, {4 * c.s.H, c.s.H});
  return c;
}

py::array new_array(const py::array& like, const std::vector<std::int64_t>& shape) {
  return py::array(like.dtype(), std::vector<py::ssize_t>(shape.begin(), shape.end()));
}

}  // namespace

py::tuple lstm(const py::object& x_obj, const py::object& h0_obj, const py::object& c0_obj, const py::object& wih_obj,
               const py::object& whh_obj, const py::object& bih_obj, const py::object& bhh_obj) {
  const std::string op = "lstm";
  Core core = check_core(op, x_obj, wih_obj, whh_obj);
  py::array &x = core.x, &w_ih = core.w_ih, &w_hh = core.w_hh;
  const DType dt = core.dt;
  const cpu::LstmShape s = core.s;
  py::array h0 = float_arg(op, "h0", h0_obj, dt, x), c0 = float_arg(op, "c0", c0_obj, dt, x);
  require_shape(op, "h0", h0, {s.B, s.H});
  require_shape(op, "c0", c0, {s.B, s.H});
  py::array bias = new_array(x, {4 * s.H});
  const bool has_bias = !bih_obj.is_none() || !bhh_obj.is_none();
  {
    // b_ih + b_hh once, folded into the input projection's epilogue.
    py::array b_ih, b_hh;
    if (!bih_obj.is_none()) require_shape(op, "b_ih", b_ih = c_contiguous(float_arg(op, "b_ih", bih_obj, dt, x)), {4 * s.H});
    if (!bhh_obj.is_none()) require_shape(op, "b_hh", b_hh = c_contiguous(float_arg(op, "b_hh", bhh_obj, dt, x)), {4 * s.H});
    py::module_ np = py::module_::import("numpy");
    py::object sum = np.attr("zeros")(4 * s.H, x.dtype());
    if (!bih_obj.is_none()) sum = sum.attr("__add__")(b_ih);
    if (!bhh_obj.is_none()) sum = sum.attr("__add__")(b_hh);
    bias = c_contiguous(py::reinterpret_borrow<py::array>(sum));
  }
  checked_numel(op, "gates", {s.T, s.B, 4 * s.H}, x.itemsize());
  checked_numel(op, "hidden states", {s.T + 1, s.B, s.H}, x.itemsize());
  x = c_contiguous(x);
  w_ih = c_contiguous(w_ih);
  w_hh = c_contiguous(w_hh);
  py::array hs = new_array(x, {s.T + 1, s.B, s.H}), cs = new_array(x, {s.T + 1, s.B, s.H});
  py::array gates = new_array(x, {s.T, s.B, 4 * s.H});
  const std::size_t bh = static_cast<std::size_t>(s.B * s.H) * x.itemsize();
  std::memcpy(hs.mutable_data(), c_contiguous(h0).data(), bh);
  std::memcpy(cs.mutable_data(), c_contiguous(c0).data(), bh);
  auto run = [&](auto zero) {
    using T = decltype(zero);
    cpu::lstm_forward<T>(s, static_cast<const T*>(x.data()), static_cast<const T*>(w_ih.data()),
                         static_cast<const T*>(w_hh.data()), has_bias ? static_cast<const T*>(bias.data()) : nullptr,
                         static_cast<T*>(hs.mutable_data()), static_cast<T*>(cs.mutable_data()),
                         static_cast<T*>(gates.mutable_data()));
  };
  {
    py::gil_scoped_release release;
    dt == DType::f32 ? run(0.0f) : run(0.0);
  }
  return py::make_tuple(hs, cs, gates);
}

py::tuple lstm_backward(const py::object& gy_obj, const py::object& ghT_obj, const py::object& gcT_obj,
                        const py::object& x_obj, const py::object& hs_obj, const py::object& cs_obj,
                        const py::object& gates_obj, const py::object& wih_obj, const py::object& whh_obj) {
  const std::string op = "lstm_backward";
  Core core = check_core(op, x_obj, wih_obj, whh_obj);
  py::array &x = core.x, &w_ih = core.w_ih, &w_hh = core.w_hh;
  const DType dt = core.dt;
  const cpu::LstmShape s = core.s;
  py::array hs = float_arg(op, "hs", hs_obj, dt, x), cs = float_arg(op, "cs", cs_obj, dt, x);
  py::array gates = float_arg(op, "gates", gates_obj, dt, x);
  require_shape(op, "hs", hs, {s.T + 1, s.B, s.H});
  require_shape(op, "cs", cs, {s.T + 1, s.B, s.H});
  require_shape(op, "gates", gates, {s.T, s.B, 4 * s.H});
  py::array gy;
  if (!gy_obj.is_none()) require_shape(op, "grad_y", gy = c_contiguous(float_arg(op, "grad_y", gy_obj, dt, x)), {s.T, s.B, s.H});
  checked_numel(op, "grad_x", {s.T, s.B, s.I}, x.itemsize());
  checked_numel(op, "gate gradients", {s.T, s.B, 4 * s.H}, x.itemsize());
  py::array dh = new_array(x, {s.B, s.H}), dc = new_array(x, {s.B, s.H});
  const std::size_t bh = static_cast<std::size_t>(s.B * s.H) * x.itemsize();
  for (auto [obj, dst, name] : {std::tuple<const py::object*, py::array*, const char*>{&ghT_obj, &dh, "grad_hT"},
                                {&gcT_obj, &dc, "grad_cT"}}) {
    if (obj->is_none()) {
      std::memset(dst->mutable_data(), 0, bh);
    } else {
      py::array a = float_arg(op, name, *obj, dt, x);
      require_shape(op, name, a, {s.B, s.H});
      std::memcpy(dst->mutable_data(), c_contiguous(a).data(), bh);
    }
  }
  x = c_contiguous(x);
  w_ih = c_contiguous(w_ih);
  w_hh = c_contiguous(w_hh);
  hs = c_contiguous(hs);
  cs = c_contiguous(cs);
  gates = c_contiguous(gates);
  py::array gx = new_array(x, {s.T, s.B, s.I}), gw_ih = new_array(x, {4 * s.H, s.I});
  py::array gw_hh = new_array(x, {4 * s.H, s.H}), gb = new_array(x, {4 * s.H});
  const bool has_gy = !gy_obj.is_none();
  auto run = [&](auto zero) {
    using T = decltype(zero);
    cpu::lstm_backward<T>(s, has_gy ? static_cast<const T*>(gy.data()) : nullptr, static_cast<T*>(dh.mutable_data()),
                          static_cast<T*>(dc.mutable_data()), static_cast<const T*>(x.data()),
                          static_cast<const T*>(hs.data()), static_cast<const T*>(cs.data()),
                          static_cast<const T*>(gates.data()), static_cast<const T*>(w_ih.data()),
                          static_cast<const T*>(w_hh.data()), static_cast<T*>(gx.mutable_data()),
                          static_cast<T*>(gw_ih.mutable_data()), static_cast<T*>(gw_hh.mutable_data()),
                          static_cast<T*>(gb.mutable_data()));
  };
  {
    py::gil_scoped_release release;
    dt == DType::f32 ? run(0.0f) : run(0.0);
  }
  return py::make_tuple(gx, dh, dc, gw_ih, gw_hh, gb);
}

}  // namespace ops
}  // namespace pyfastnn
