// Elementwise activations and their gradients, and dropout: flat ranges of
// contiguous arrays split over the thread pool.
#include "ops/activation.h"

#include "common/activation.h"
#include "common/checks.h"
#include "cpu/elementwise/elementwise.h"
#include "runtime/dispatch.h"
#include "runtime/parallel.h"

namespace pyfastnn {
namespace ops {

namespace {

constexpr std::int64_t kGrain = 1 << 15;

Activation parse_kind(const std::string& op, const std::string& kind) {
  Activation act;
  if (kind == "none" || !parse_activation(kind.c_str(), &act))
    raise_value_error(op, "argument 'kind' must be one of " + activation_choices() + ", got '" + kind + "'");
  return act;
}

py::array like(const py::array& a) {
  return py::array(a.dtype(), std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
}

// splitmix64: a counter-based generator, so the mask depends on (seed, index)
// only — not on the thread count or chunking.
inline std::uint64_t mix(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

py::array activation(const py::object& x_obj, const std::string& kind) {
  const std::string op = kind;
  py::array x = require_array(op, "x", x_obj);
  const DType dt = require_float(op, "x", x);
  const Activation act = parse_kind(op, kind);
  x = c_contiguous(x);
  py::array y = like(x);
  const std::int64_t n = x.size();
  const void* xp = x.data();
  void* yp = y.mutable_data();
  auto run = [&](auto zero) {
    using T = decltype(zero);
    const auto f = cpu::elementwise_kernels<T>(active_isa()).activation;
    parallel_for(n, kGrain, [&](std::int64_t a, std::int64_t b) {
      f(static_cast<const T*>(xp) + a, static_cast<T*>(yp) + a, b - a, act);
    });
  };
  {
    py::gil_scoped_release release;
    dt == DType::f32 ? run(0.0f) : run(0.0);
  }
  return y;
}

py::array activation_backward(const py::object& grad_obj, const py::object& saved_obj, const std::string& kind) {
  const std::string op = kind + "_backward";
  const Activation act = parse_kind(op, kind);
  const char* saved_name = (act == Activation::sigmoid || act == Activation::tanh) ? "y" : "x";
  py::array g = require_array(op, "grad_y", grad_obj);
  const DType dt = require_float(op, "grad_y", g);
  py::array saved = require_array(op, saved_name, saved_obj);
  require_like(op, "grad_y", g, saved_name, saved);
  g = c_contiguous(g);
  saved = c_contiguous(saved);
  py::array gx = like(g);
  const std::int64_t n = g.size();
  const void* gp = g.data();
  const void* sp = saved.data();
  void* op_ = gx.mutable_data();
  auto run = [&](auto zero) {
    using T = decltype(zero);
    const auto f = cpu::elementwise_kernels<T>(active_isa()).activation_backward;
    parallel_for(n, kGrain, [&](std::int64_t a, std::int64_t b) {
      f(static_cast<const T*>(gp) + a, static_cast<const T*>(sp) + a, static_cast<T*>(op_) + a, b - a, act);
    });
  };
  {
    py::gil_scoped_release release;
    dt == DType::f32 ? run(0.0f) : run(0.0);
  }
  return gx;
}

py::tuple dropout(const py::object& x_obj, double p, std::uint64_t seed) {
  const std::string op = "dropout";
  py::array x = require_array(op, "x", x_obj);
  const DType dt = require_float(op, "x", x);
  if (!(p >= 0.0 && p <= 1.0)) raise_value_error(op, "argument 'p' must be in [0, 1], got " + std::to_string(p));
  x = c_contiguous(x);
  py::array y = like(x);
  py::array_t<std::uint8_t> mask(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  const std::int64_t n = x.size();
  const void* xp = x.data();
  void* yp = y.mutable_data();
  std::uint8_t* mp = mask.mutable_data();
  // keep iff u >= p with u uniform on [0, 1) in steps of 2^-32.
  const std::uint64_t threshold = static_cast<std::uint64_t>(p * 4294967296.0);
  const double scale = p < 1.0 ? 1.0 / (1.0 - p) : 0.0;
  auto run = [&](auto zero) {
    using T = decltype(zero);
    const T s = static_cast<T>(scale);
    parallel_for(n, kGrain, [&](std::int64_t a, std::int64_t b) {
      const T* xi = static_cast<const T*>(xp);
      T* yi = static_cast<T*>(yp);
      for (std::int64_t i = a; i < b; ++i) {
        const bool keep = (mix(seed ^ mix(static_cast<std::uint64_t>(i))) >> 32) >= threshold;
        mp[i] = keep;
        yi[i] = keep ? xi[i] * s : T(0);
      }
    });
  };
  {
    py::gil_scoped_release release;
    dt == DType::f32 ? run(0.0f) : run(0.0);
  }
  return py::make_tuple(y, mask);
}

py::array dropout_backward(const py::object& grad_obj, const py::object& mask_obj, double p) {
  const std::string op = "dropout_backward";
  py::array g = require_array(op, "grad_y", grad_obj);
  const DType dt = require_float(op, "grad_y", g);
  py::array mask = require_array(op, "mask", mask_obj);
  if (!mask.dtype().is(py::dtype::of<std::uint8_t>()) && mask.dtype().kind() != 'b')
    raise_type_error(op, "argument 'mask' must have dtype uint8 or bool (as returned by dropout), got " + dtype_str(mask));
  if (mask.ndim() != g.ndim() || !std::equal(g.shape(), g.shape() + g.ndim(), mask.shape()))
    raise_value_error(op, "argument 'mask' must have the shape of 'grad_y' " + shape_str(g) + ", got " + shape_str(mask));
  if (!(p >= 0.0 && p <= 1.0)) raise_value_error(op, "argument 'p' must be in [0, 1], got " + std::to_string(p));
  g = c_contiguous(g);
  mask = c_contiguous(mask);
  py::array gx = like(g);
  const std::int64_t n = g.size();
  const void* gp = g.data();
  const std::uint8_t* mp = static_cast<const std::uint8_t*>(mask.data());
  void* op_ = gx.mutable_data();
  const double scale = p < 1.0 ? 1.0 / (1.0 - p) : 0.0;
  auto run = [&](auto zero) {
    using T = decltype(zero);
    const T s = static_cast<T>(scale);
    parallel_for(n, kGrain, [&](std::int64_t a, std::int64_t b) {
      const T* gi = static_cast<const T*>(gp);
      T* out = static_cast<T*>(op_);
      for (std::int64_t i = a; i < b; ++i) out[i] = mp[i] ? gi[i] * s : T(0);
    });
  };
  {
    py::gil_scoped_release release;
    dt == DType::f32 ? run(0.0f) : run(0.0);
  }
  return gx;
}

}  // namespace ops
}  // namespace pyfastnn
