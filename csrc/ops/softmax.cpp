// softmax / log_softmax over the last axis of a contiguous array (the Python
// layer moves any other axis there), and their gradients.
#include "common/checks.h"
#include "cpu/rowwise/rowwise.h"
#include "ops/rowwise_ops.h"
#include "runtime/dispatch.h"
#include "runtime/parallel.h"

namespace pyfastnn {
namespace ops {

namespace {
py::array like(const py::array& a) {
  return py::array(a.dtype(), std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
}
std::int64_t last_dim(const py::array& a) { return a.ndim() ? a.shape(a.ndim() - 1) : 1; }
}  // namespace

py::array softmax(const py::object& x_obj, bool log) {
  const std::string op = log ? "log_softmax" : "softmax";
  py::array x = require_array(op, "x", x_obj);
  const DType dt = require_float(op, "x", x);
  x = c_contiguous(x);
  py::array y = like(x);
  const std::int64_t n = last_dim(x), rows = n ? x.size() / n : 0;
  const void* xp = x.data();
  void* yp = y.mutable_data();
  auto run = [&](auto zero) {
    using T = decltype(zero);
    const auto f = cpu::rowwise_kernels<T>(active_isa()).softmax;
    parallel_for(rows, std::max<std::int64_t>(1, 8192 / std::max<std::int64_t>(1, n)), [&](std::int64_t a, std::int64_t b) {
      f(static_cast<const T*>(xp) + a * n, static_cast<T*>(yp) + a * n, b - a, n, log);
    });
  };
  {
    py::gil_scoped_release release;
    dt == DType::f32 ? run(0.0f) : run(0.0);
  }
  return y;
}

py::array softmax_backward(const py::object& grad_obj, const py::object& y_obj, bool log) {
  const std::string op = log ? "log_softmax_backward" : "softmax_backward";
  py::array g = require_array(op, "grad_y", grad_obj);
  const DType dt = require_float(op, "grad_y", g);
  py::array y = require_array(op, "y", y_obj);
  require_like(op, "grad_y", g, "y", y);
  g = c_contiguous(g);
  y = c_contiguous(y);
  py::array gx = like(g);
  const std::int64_t n = last_dim(g), rows = n ? g.size() / n : 0;
  const void* gp = g.data();
  const void* yp = y.data();
  void* outp = gx.mutable_data();
  auto run = [&](auto zero) {
    using T = decltype(zero);
    const auto f = cpu::rowwise_kernels<T>(active_isa()).softmax_backward;
    parallel_for(rows, std::max<std::int64_t>(1, 8192 / std::max<std::int64_t>(1, n)), [&](std::int64_t a, std::int64_t b) {
      f(static_cast<const T*>(gp) + a * n, static_cast<const T*>(yp) + a * n, static_cast<T*>(outp) + a * n, b - a, n,
        log);
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
