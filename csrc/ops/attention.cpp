// attention / attention_backward: q (B, H, Nq, D), k and v (B, H, Nk, D),
// an optional boolean (True = keep) or additive mask broadcast to
// (B, H, Nq, Nk) by the Python layer; returns (out, lse). The forward reads
// views whose rows are contiguous in place (a decode step's keys and values
// are the filled part of a preallocated cache: copying them would move the
// whole cache of every layer at every token); the backward takes copies.
#include "ops/attention.h"

#include "common/checks.h"
#include "cpu/attention/attention.h"

namespace pyfastnn {
namespace ops {

namespace {

struct Checked {
  cpu::AttentionShape s;
  DType dt;
  py::array q, k, v, mask;
  cpu::RowLayout q_at, k_at, v_at;
  cpu::AttentionMask m;
};

// a itself when its rows are contiguous (its layout filled in), else a
// contiguous copy; with rows_in_place false, always contiguous.
py::array rows_readable(const py::array& a, bool rows_in_place, cpu::RowLayout* at) {
  std::vector<std::ptrdiff_t> st;
  py::array out = with_element_strides(a, &st);
  if (!rows_in_place || (st[3] != 1 && a.shape(3) > 1)) {
    out = c_contiguous(a);
    *at = cpu::RowLayout::contiguous(a.shape(1), a.shape(2), a.shape(3));
    return out;
  }
  *at = cpu::RowLayout{st[0], st[1], st[2]};
  return out;
}

Checked check(const std::string& op, const py::object& q_obj, const py::object& k_obj, const py::object& v_obj,
              bool causal, const py::object& mask_obj, double scale, bool rows_in_place) {
  Checked c;
  c.q = require_array(op, "q", q_obj);
  c.k = require_array(op, "k", k_obj);
  c.v = require_array(op, "v", v_obj);
  c.dt = require_float(op, "q", c.q);
  for (auto [name, a] : {std::pair<const char*, py::array*>{"q", &c.q}, {"k", &c.k}, {"v", &c.v}}) {
    if (dtype_of(*a) != c.dt)
      raise_type_error(op, std::string("argument '") + name + "' must have dtype " + dtype_str(c.q) + " like 'q', got " +
                               dtype_str(*a));
    if (a->ndim() != 4)
      raise_value_error(op, std::string("argument '") + name + "' must be 4-D (B, H, N, D), got shape " + shape_str(*a));
  }
  const std::int64_t B = c.q.shape(0), H = c.q.shape(1), Nq = c.q.shape(2), D = c.q.shape(3), Nk = c.k.shape(2);
  if (c.k.shape(0) != B || c.k.shape(1) != H || c.k.shape(3) != D)
    raise_value_error(op, "argument 'k' must have shape (" + std::to_string(B) + ", " + std::to_string(H) +
                              ", Nk, " + std::to_string(D) + ") to match 'q' " + shape_str(c.q) + ", got " + shape_str(c.k));
  if (c.v.shape(0) != B || c.v.shape(1) != H || c.v.shape(2) != Nk || c.v.shape(3) != D)
    raise_value_error(op, "argument 'v' must have the shape of 'k' " + shape_str(c.k) + ", got " + shape_str(c.v));
  if (!(scale > 0) || !std::isfinite(scale))
    raise_value_error(op, "argument 'scale' must be a positive number, got " + std::to_string(scale));
  c.s = cpu::AttentionShape{B, H, Nq, Nk, D, scale, causal};
  c.q = rows_readable(c.q, rows_in_place, &c.q_at);
  c.k = rows_readable(c.k, rows_in_place, &c.k_at);
  c.v = rows_readable(c.v, rows_in_place, &c.v_at);
  if (!mask_obj.is_none()) {
    c.mask = require_array(op, "mask", mask_obj);
    const bool is_bool = c.mask.dtype().kind() == 'b';
    if (!is_bool && dtype_of(c.mask) != c.dt)
      raise_type_error(op, "argument 'mask' must be bool (True = keep) or " + dtype_str(c.q) + " (additive), got " +
                               dtype_str(c.mask));
    const std::int64_t want[4] = {B, H, Nq, Nk};
    bool ok = c.mask.ndim() == 4;
    for (int i = 0; ok && i < 4; ++i) ok = c.mask.shape(i) == want[i];
    if (!ok) raise_value_error(op, "argument 'mask' must broadcast to (B, H, Nq, Nk), got " + shape_str(c.mask));
    std::vector<std::ptrdiff_t> st;
    c.mask = with_element_strides(c.mask, &st);
    c.m = cpu::AttentionMask{c.mask.data(), is_bool, st[0], st[1], st[2], st[3]};
  }
  return c;
}

py::array new_like(const py::array& ref, std::vector<py::ssize_t> shape) { return py::array(ref.dtype(), shape); }

}  // namespace

py::tuple attention(const py::object& q, const py::object& k, const py::object& v, bool causal, const py::object& mask,
                    double scale) {
  const Checked c = check("attention", q, k, v, causal, mask, scale, true);
  const auto& s = c.s;
  py::array out = new_like(c.q, {s.B, s.H, s.Nq, s.D}), lse = new_like(c.q, {s.B, s.H, s.Nq});
  auto run = [&](auto zero) {
    using T = decltype(zero);
    cpu::attention_forward<T>(s, static_cast<const T*>(c.q.data()), c.q_at, static_cast<const T*>(c.k.data()),
                              c.k_at, static_cast<const T*>(c.v.data()), c.v_at, c.m,
                              static_cast<T*>(out.mutable_data()), static_cast<T*>(lse.mutable_data()));
  };
  {
    py::gil_scoped_release release;
    c.dt == DType::f32 ? run(0.0f) : run(0.0);
  }
  return py::make_tuple(out, lse);
}

py::tuple attention_backward(const py::object& grad_out, const py::object& q, const py::object& k,
                             const py::object& v, const py::object& out_obj, const py::object& lse_obj, bool causal,
                             const py::object& mask, double scale) {
  const std::string op = "attention_backward";
  const Checked c = check(op, q, k, v, causal, mask, scale, false);
  const auto& s = c.s;
  py::array g = require_array(op, "grad_out", grad_out), out = require_array(op, "out", out_obj);
  py::array lse = require_array(op, "lse", lse_obj);
  require_like(op, "q", c.q, "grad_out", g);
  require_like(op, "q", c.q, "out", out);
  if (dtype_of(lse) != c.dt || lse.ndim() != 3 || lse.shape(0) != s.B || lse.shape(1) != s.H || lse.shape(2) != s.Nq)
    raise_value_error(op, "argument 'lse' must be the (B, H, Nq) log-sum-exp returned by attention, got " +
                              dtype_str(lse) + " " + shape_str(lse));
  g = c_contiguous(g);
  out = c_contiguous(out);
  lse = c_contiguous(lse);
  py::array gq = new_like(c.q, {s.B, s.H, s.Nq, s.D}), gk = new_like(c.q, {s.B, s.H, s.Nk, s.D});
  py::array gv = new_like(c.q, {s.B, s.H, s.Nk, s.D});
  auto run = [&](auto zero) {
    using T = decltype(zero);
    cpu::attention_backward<T>(s, static_cast<const T*>(c.q.data()), static_cast<const T*>(c.k.data()),
                               static_cast<const T*>(c.v.data()), static_cast<const T*>(out.data()),
                               static_cast<const T*>(lse.data()), static_cast<const T*>(g.data()), c.m,
                               static_cast<T*>(gq.mutable_data()), static_cast<T*>(gk.mutable_data()),
                               static_cast<T*>(gv.mutable_data()));
  };
  {
    py::gil_scoped_release release;
    c.dt == DType::f32 ? run(0.0f) : run(0.0);
  }
  return py::make_tuple(gq, gk, gv);
}

}  // namespace ops
}  // namespace pyfastnn
