// layer_norm over the trailing `normalized_size` elements of each row, like
// torch.native_layer_norm: returns (y, mean, rstd); the backward pass gives
// (grad_x, grad_weight, grad_bias), the parameter gradients summed over rows
// from per-chunk partials added in chunk order (the same bits for any thread
// count).
#include <algorithm>
#include <vector>

#include "common/checks.h"
#include "cpu/rowwise/rowwise.h"
#include "ops/rowwise_ops.h"
#include "runtime/dispatch.h"
#include "runtime/parallel.h"

namespace pyfastnn {
namespace ops {

namespace {

// Rows per chunk: about 8K elements, so a chunk is worth a thread.
std::int64_t row_grain(std::int64_t n) { return std::max<std::int64_t>(1, 8192 / std::max<std::int64_t>(1, n)); }
// Bounds on the per-chunk partial gradients of layer_norm_backward.
constexpr std::int64_t kMaxNormChunks = 64;
constexpr std::int64_t kPartialBytes = std::int64_t{32} << 20;

py::array like(const py::array& a) {
  return py::array(a.dtype(), std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
}

std::int64_t rows_of(const std::string& op, const py::array& x, std::int64_t n) {
  if (n < 1 || x.size() % n != 0)
    raise_value_error(op, "normalized size " + std::to_string(n) + " does not divide 'x' of shape " + shape_str(x));
  return x.size() / n;
}

py::array optional_vector(const std::string& op, const char* name, const py::object& obj, const py::array& x,
                          std::int64_t n) {
  if (obj.is_none()) return py::array();
  py::array v = require_array(op, name, obj);
  if (dtype_of(v) != dtype_of(x))
    raise_type_error(op, std::string("argument '") + name + "' must have dtype " + dtype_str(x) + " like 'x', got " +
                             dtype_str(v));
  if (v.size() != n)
    raise_value_error(op, std::string("argument '") + name + "' must have " + std::to_string(n) +
                              " elements (the normalized shape), got shape " + shape_str(v));
  return c_contiguous(v);
}

}  // namespace

py::tuple layer_norm(const py::object& x_obj, std::int64_t n, const py::object& w_obj, const py::object& b_obj,
                     double eps) {
  const std::string op = "layer_norm";
  py::array x = require_array(op, "x", x_obj);
  const DType dt = require_float(op, "x", x);
  const std::int64_t rows = rows_of(op, x, n);
  if (!(eps >= 0)) raise_value_error(op, "argument 'eps' must be >= 0, got " + std::to_string(eps));
  py::array w = optional_vector(op, "weight", w_obj, x, n), b = optional_vector(op, "bias", b_obj, x, n);
  x = c_contiguous(x);
  py::array y = like(x);
  std::vector<py::ssize_t> stat_shape(x.shape(), x.shape() + x.ndim());
  for (std::int64_t seen = 1; seen < n && !stat_shape.empty();) {  // drop the normalized trailing dims
    seen *= stat_shape.back();
    stat_shape.pop_back();
  }
  if (n == 1 && !stat_shape.empty() && stat_shape.back() == 1) stat_shape.pop_back();
  py::array mean(x.dtype(), stat_shape), rstd(x.dtype(), stat_shape);
  const void* xp = x.data();
  const void* wp = w_obj.is_none() ? nullptr : w.data();
  const void* bp = b_obj.is_none() ? nullptr : b.data();
  void *yp = y.mutable_data(), *mp = mean.mutable_data(), *rp = rstd.mutable_data();
  auto run = [&](auto zero) {
    using T = decltype(zero);
    const auto f = cpu::rowwise_kernels<T>(active_isa()).layer_norm;
    parallel_for(rows, row_grain(n), [&](std::int64_t r0, std::int64_t r1) {
      f(static_cast<const T*>(xp) + r0 * n, static_cast<const T*>(wp), static_cast<const T*>(bp),
        static_cast<T*>(yp) + r0 * n, static_cast<T*>(mp) + r0, static_cast<T*>(rp) + r0, r1 - r0, n, eps);
    });
  };
  {
    py::gil_scoped_release release;
    dt == DType::f32 ? run(0.0f) : run(0.0);
  }
  return py::make_tuple(y, mean, rstd);
}

py::tuple layer_norm_backward(const py::object& g_obj, const py::object& x_obj, const py::object& mean_obj,
                              const py::object& rstd_obj, const py::object& w_obj, std::int64_t n, bool weight_grads) {
  const std::string op = "layer_norm_backward";
  py::array g = require_array(op, "grad_y", g_obj);
  const DType dt = require_float(op, "grad_y", g);
  py::array x = require_array(op, "x", x_obj);
  require_like(op, "grad_y", g, "x", x);
  const std::int64_t rows = rows_of(op, x, n);
  py::array mean = require_array(op, "mean", mean_obj), rstd = require_array(op, "rstd", rstd_obj);
  for (const auto& [name, a] : {std::pair<const char*, py::array&>{"mean", mean}, {"rstd", rstd}}) {
    if (dtype_of(a) != dt) raise_type_error(op, std::string("argument '") + name + "' must have dtype " + dtype_str(g));
    if (a.size() != rows)
      raise_value_error(op, std::string("argument '") + name + "' must have one value per row (" +
                                std::to_string(rows) + "), got shape " + shape_str(a));
  }
  py::array w = optional_vector(op, "weight", w_obj, x, n);
  g = c_contiguous(g);
  x = c_contiguous(x);
  mean = c_contiguous(mean);
  rstd = c_contiguous(rstd);
  py::array gx = like(x);
  py::array gw(x.dtype(), std::vector<py::ssize_t>{static_cast<py::ssize_t>(n)});
  py::array gb(x.dtype(), std::vector<py::ssize_t>{static_cast<py::ssize_t>(n)});
  const void *gp = g.data(), *xp = x.data(), *mp = mean.data(), *rp = rstd.data();
  const void* wp = w_obj.is_none() ? nullptr : w.data();
  void *gxp = gx.mutable_data(), *gwp = gw.mutable_data(), *gbp = gb.mutable_data();
  auto run = [&](auto zero) {
    using T = decltype(zero);
    const auto f = cpu::rowwise_kernels<T>(active_isa()).layer_norm_backward;
    const int nthreads = get_num_threads();
    T* gwo = static_cast<T*>(gwp);
    T* gbo = static_cast<T*>(gbp);
    auto rows_into = [&](std::int64_t r0, std::int64_t r1, T* pw, T* pb) {
      f(static_cast<const T*>(gp) + r0 * n, static_cast<const T*>(xp) + r0 * n, static_cast<const T*>(mp) + r0,
        static_cast<const T*>(rp) + r0, static_cast<const T*>(wp), static_cast<T*>(gxp) + r0 * n, pw, pb, r1 - r0, n);
    };
    std::fill(gwo, gwo + n, T(0));
    std::fill(gbo, gbo + n, T(0));
    if (!weight_grads) {
      parallel_for(rows, row_grain(n), [&](std::int64_t r0, std::int64_t r1) { rows_into(r0, r1, nullptr, nullptr); },
                   nthreads);
      return;
    }
    // grad_weight / grad_bias: row chunks fixed by the shape, each summed into
    // its own partial (chunk 0 straight into the outputs), the partials then
    // added in chunk order: the same bits for any thread count. The partials
    // take at most kPartialBytes.
    const std::int64_t max_chunks =
        std::clamp<std::int64_t>(kPartialBytes / static_cast<std::int64_t>(2 * n * sizeof(T)), 1, kMaxNormChunks);
    const FixedChunks chunks = fixed_chunks(rows, row_grain(n), max_chunks);
    std::vector<T> partial(static_cast<std::size_t>(std::max<std::int64_t>(0, chunks.count - 1) * 2 * n), T(0));
    parallel_chunks(chunks.count, nthreads, [&](std::int64_t i) {
      T* pw = i == 0 ? gwo : partial.data() + (i - 1) * 2 * n;
      rows_into(chunks.begin(i), chunks.end(i), pw, i == 0 ? gbo : pw + n);
    });
    // Columns split over the threads, each column's partials added in chunk order.
    parallel_for(n, 1024, [&](std::int64_t j0, std::int64_t j1) {
      for (std::int64_t i = 1; i < chunks.count; ++i) {
        const T* pw = partial.data() + (i - 1) * 2 * n;
        for (std::int64_t j = j0; j < j1; ++j) {
          gwo[j] += pw[j];
          gbo[j] += pw[n + j];
        }
      }
    }, nthreads);
  };
  {
    py::gil_scoped_release release;
    dt == DType::f32 ? run(0.0f) : run(0.0);
  }
  if (!weight_grads) return py::make_tuple(gx, py::none(), py::none());
  return py::make_tuple(gx, gw, gb);
}

}  // namespace ops
}  // namespace pyfastnn
