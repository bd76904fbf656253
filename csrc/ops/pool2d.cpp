// max_pool2d / avg_pool2d and their backward passes: PyTorch's arguments
// (int-or-pair kernel_size, stride defaulting to kernel_size, padding at most
// half the kernel), inputs (N, C, H, W) or (C, H, W); and the adaptive pools
// (output_size an int or a pair, None keeping that input size).
#include "ops/pool2d.h"

#include "common/checks.h"
#include "common/size_math.h"
#include "cpu/pool/pool.h"
#include "runtime/thread_pool.h"

namespace pyfastnn {
namespace ops {

namespace {

// (N, C, H, W) or (C, H, W) -> planes, H, W; the element count must fit
// (ValueError naming `name` otherwise).
void plane_shape(const std::string& op, const char* name, const std::vector<std::int64_t>& shape,
                 cpu::PoolGeometry* g) {
  if (shape.size() != 3 && shape.size() != 4) {
    std::string s = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    raise_value_error(op, std::string("argument '") + name + "' must be 3-D (C, H, W) or 4-D (N, C, H, W), got shape " +
                              s + (shape.size() == 1 ? ",)" : ")"));
  }
  const SizeMath size(op, name);
  g->planes = 1;
  for (std::size_t i = 0; i + 2 < shape.size(); ++i) g->planes = size.mul(g->planes, shape[i]);
  g->H = shape[shape.size() - 2];
  g->W = shape[shape.size() - 1];
  size.mul(g->planes, size.mul(g->H, g->W));
}

std::vector<std::int64_t> shape_of(const py::array& a) {
  return std::vector<std::int64_t>(a.shape(), a.shape() + a.ndim());
}

// Fills the window geometry and output size from the pooling arguments.
void window(const std::string& op, const py::object& kernel_size, const py::object& stride,
            const py::object& padding, cpu::PoolGeometry* g) {
  parse_int_pair(op, "kernel_size", kernel_size, 1, &g->KH, &g->KW);
  if (stride.is_none()) {
    g->SH = g->KH;
    g->SW = g->KW;
  } else {
    parse_int_pair(op, "stride", stride, 1, &g->SH, &g->SW);
  }
  parse_int_pair(op, "padding", padding, 0, &g->PH, &g->PW);
  if (g->PH > g->KH / 2 || g->PW > g->KW / 2)
    raise_value_error(op, "argument 'padding' (" + std::to_string(g->PH) + ", " + std::to_string(g->PW) +
                              ") must be at most half of 'kernel_size' (" + std::to_string(g->KH) + ", " +
                              std::to_string(g->KW) + ")");
  const SizeMath by_padding(op, "padding");
  const std::int64_t hp = by_padding.add(g->H, 2 * g->PH), wp = by_padding.add(g->W, 2 * g->PW);
  if (hp < g->KH || wp < g->KW)
    raise_value_error(op, "'kernel_size' (" + std::to_string(g->KH) + ", " + std::to_string(g->KW) +
                              ") is larger than the padded input (" + std::to_string(hp) + ", " + std::to_string(wp) +
                              ")");
  g->OH = (hp - g->KH) / g->SH + 1;
  g->OW = (wp - g->KW) / g->SW + 1;
}

std::vector<py::ssize_t> out_shape(const std::vector<std::int64_t>& in, const cpu::PoolGeometry& g) {
  std::vector<py::ssize_t> s(in.begin(), in.end());
  s[s.size() - 2] = g.OH;
  s[s.size() - 1] = g.OW;
  return s;
}

py::array require_grad(const std::string& op, const py::object& obj, DType* dt) {
  py::array gy = require_array(op, "grad_y", obj);
  *dt = require_float(op, "grad_y", gy);
  return c_contiguous(gy);
}

// x checked and made contiguous, with the window geometry and output shape.
struct PoolInput {
  py::array x;
  DType dt;
  cpu::PoolGeometry g;
  std::vector<py::ssize_t> out_shape;
};

PoolInput prepare(const std::string& op, const py::object& x_obj, const py::object& kernel_size,
                  const py::object& stride, const py::object& padding) {
  PoolInput in;
  in.x = require_array(op, "x", x_obj);
  in.dt = require_float(op, "x", in.x);
  plane_shape(op, "x", shape_of(in.x), &in.g);
  window(op, kernel_size, stride, padding, &in.g);
  in.out_shape = out_shape(shape_of(in.x), in.g);
  checked_numel(op, "output", std::vector<std::int64_t>(in.out_shape.begin(), in.out_shape.end()), 8);
  in.x = c_contiguous(in.x);
  return in;
}

// Allocates an array of element type T and runs body(T* out) without the GIL.
template <class T, class Body>
py::array_t<T> run_into(const std::vector<py::ssize_t>& shape, Body&& body) {
  py::array_t<T> out(shape);
  T* p = out.mutable_data();
  py::gil_scoped_release release;
  body(p);
  return out;
}

}  // namespace

py::tuple max_pool2d(const py::object& x_obj, const py::object& kernel_size, const py::object& stride,
                     const py::object& padding) {
  const PoolInput in = prepare("max_pool2d", x_obj, kernel_size, stride, padding);
  const py::array& x = in.x;
  const cpu::PoolGeometry& g = in.g;
  const auto& shape = in.out_shape;
  py::array_t<std::int64_t> idx(shape);
  std::int64_t* ip = idx.mutable_data();
  auto run = [&](auto zero) -> py::array {
    using T = decltype(zero);
    const T* xp = static_cast<const T*>(x.data());
    return run_into<T>(shape, [&](T* y) { cpu::max_pool2d_forward<T>(g, xp, y, ip, get_num_threads()); });
  };
  py::array y = in.dt == DType::f32 ? run(0.0f) : run(0.0);
  return py::make_tuple(y, idx);
}

py::array avg_pool2d(const py::object& x_obj, const py::object& kernel_size, const py::object& stride,
                     const py::object& padding) {
  const PoolInput in = prepare("avg_pool2d", x_obj, kernel_size, stride, padding);
  const py::array& x = in.x;
  const cpu::PoolGeometry& g = in.g;
  const auto& shape = in.out_shape;
  auto run = [&](auto zero) -> py::array {
    using T = decltype(zero);
    const T* xp = static_cast<const T*>(x.data());
    return run_into<T>(shape, [&](T* y) { cpu::avg_pool2d_forward<T>(g, xp, y, get_num_threads()); });
  };
  return in.dt == DType::f32 ? run(0.0f) : run(0.0);
}

namespace {

// The backward pass of max pooling (plain or adaptive): gradients scattered to
// the saved flat indices of each plane.
py::array max_backward(const std::string& op, const py::object& grad_y, const py::object& indices,
                       const py::object& x_shape) {
  DType dt;
  py::array gy = require_grad(op, grad_y, &dt);
  py::array idx = require_array(op, "indices", indices);
  if (!idx.dtype().is(py::dtype::of<std::int64_t>()))
    raise_type_error(op, "argument 'indices' must have dtype int64 (as returned by max_pool2d), got " + dtype_str(idx));
  const std::vector<std::int64_t> xs = parse_shape(op, "x_shape", x_shape);
  cpu::PoolGeometry g;
  plane_shape(op, "x_shape", xs, &g);
  const auto gys = shape_of(gy);
  if (gys.size() != xs.size() || !std::equal(xs.begin(), xs.end() - 2, gys.begin()))
    raise_value_error(op, "argument 'grad_y' of shape " + shape_str(gy) + " does not match 'x_shape'");
  if (shape_of(idx) != gys)
    raise_value_error(op, "argument 'indices' must have the shape of 'grad_y' " + shape_str(gy) + ", got " +
                              shape_str(idx));
  g.OH = gys[gys.size() - 2];
  g.OW = gys[gys.size() - 1];
  g.KH = g.KW = g.SH = g.SW = 1;
  g.PH = g.PW = 0;
  idx = c_contiguous(idx);
  checked_numel(op, "grad_x", xs, dt == DType::f32 ? 4 : 8);
  const std::vector<py::ssize_t> shape(xs.begin(), xs.end());
  const std::int64_t* ip = static_cast<const std::int64_t*>(idx.data());
  bool ok = true;
  auto run = [&](auto zero) -> py::array {
    using T = decltype(zero);
    const T* gyp = static_cast<const T*>(gy.data());
    return run_into<T>(shape, [&](T* gx) { ok = cpu::max_pool2d_backward<T>(g, gyp, ip, gx, get_num_threads()); });
  };
  py::array out = dt == DType::f32 ? run(0.0f) : run(0.0);
  if (!ok)
    raise_value_error(op, "argument 'indices' holds a position outside the " + std::to_string(g.H) + "x" +
                              std::to_string(g.W) + " input plane");
  return out;
}

// output_size: an int or a pair whose entries are ints >= 0 or None (keep the input size), as torch.
void parse_output_size(const std::string& op, const py::object& v, cpu::PoolGeometry* g) {
  const std::string given = py::str(py::repr(v)).cast<std::string>();
  auto one = [&](const py::handle& h, std::int64_t keep) -> std::int64_t {
    if (h.is_none()) return keep;
    if (py::isinstance<py::bool_>(h) || !PyIndex_Check(h.ptr()))
      raise_type_error(op, "argument 'output_size' must be an int or a pair of ints (or None), got " + given);
    const std::int64_t n = parse_int(op, "output_size", h);
    if (n < 0) raise_value_error(op, "argument 'output_size' must be >= 0, got " + given);
    return n;
  };
  if (py::isinstance<py::tuple>(v) || py::isinstance<py::list>(v)) {
    py::sequence seq = py::reinterpret_borrow<py::sequence>(v);
    if (seq.size() != 2)
      raise_value_error(op, "argument 'output_size' must be an int or a pair of ints (or None), got " + given);
    g->OH = one(seq[0], g->H);
    g->OW = one(seq[1], g->W);
  } else {
    if (v.is_none())
      raise_type_error(op, "argument 'output_size' must be an int or a pair of ints (or None), got None");
    g->OH = g->OW = one(v, 0);
  }
}

// x checked and made contiguous, with the adaptive geometry and output shape.
PoolInput prepare_adaptive(const std::string& op, const py::object& x_obj, const py::object& output_size) {
  PoolInput in;
  in.x = require_array(op, "x", x_obj);
  in.dt = require_float(op, "x", in.x);
  plane_shape(op, "x", shape_of(in.x), &in.g);
  parse_output_size(op, output_size, &in.g);
  in.g.KH = in.g.KW = in.g.SH = in.g.SW = 1;
  in.g.PH = in.g.PW = 0;
  in.out_shape = out_shape(shape_of(in.x), in.g);
  const std::int64_t out_n = checked_numel(
      op, "the output", std::vector<std::int64_t>(in.out_shape.begin(), in.out_shape.end()), in.dt == DType::f32 ? 4 : 8);
  if (out_n > 0 && (in.g.H == 0 || in.g.W == 0))
    raise_value_error(op, "argument 'x' must have non-empty planes (H, W > 0) to pool, got shape " + shape_str(in.x));
  in.x = c_contiguous(in.x);
  return in;
}

}  // namespace

py::array max_pool2d_backward(const py::object& grad_y, const py::object& indices, const py::object& x_shape) {
  return max_backward("max_pool2d_backward", grad_y, indices, x_shape);
}

py::tuple adaptive_max_pool2d(const py::object& x_obj, const py::object& output_size) {
  const PoolInput in = prepare_adaptive("adaptive_max_pool2d", x_obj, output_size);
  py::array_t<std::int64_t> idx(in.out_shape);
  std::int64_t* ip = idx.mutable_data();
  auto run = [&](auto zero) -> py::array {
    using T = decltype(zero);
    const T* xp = static_cast<const T*>(in.x.data());
    return run_into<T>(in.out_shape,
                       [&](T* y) { cpu::adaptive_max_pool2d_forward<T>(in.g, xp, y, ip, get_num_threads()); });
  };
  py::array y = in.dt == DType::f32 ? run(0.0f) : run(0.0);
  return py::make_tuple(y, idx);
}

py::array adaptive_max_pool2d_backward(const py::object& grad_y, const py::object& indices,
                                       const py::object& x_shape) {
  return max_backward("adaptive_max_pool2d_backward", grad_y, indices, x_shape);
}

py::array adaptive_avg_pool2d(const py::object& x_obj, const py::object& output_size) {
  const PoolInput in = prepare_adaptive("adaptive_avg_pool2d", x_obj, output_size);
  auto run = [&](auto zero) -> py::array {
    using T = decltype(zero);
    const T* xp = static_cast<const T*>(in.x.data());
    return run_into<T>(in.out_shape, [&](T* y) { cpu::adaptive_avg_pool2d_forward<T>(in.g, xp, y, get_num_threads()); });
  };
  return in.dt == DType::f32 ? run(0.0f) : run(0.0);
}

py::array adaptive_avg_pool2d_backward(const py::object& grad_y, const py::object& x_shape) {
  const std::string op = "adaptive_avg_pool2d_backward";
  DType dt;
  py::array gy = require_grad(op, grad_y, &dt);
  const std::vector<std::int64_t> xs = parse_shape(op, "x_shape", x_shape);
  cpu::PoolGeometry g;
  plane_shape(op, "x_shape", xs, &g);
  const auto gys = shape_of(gy);
  if (gys.size() != xs.size() || !std::equal(xs.begin(), xs.end() - 2, gys.begin()))
    raise_value_error(op, "argument 'grad_y' of shape " + shape_str(gy) + " does not match 'x_shape'");
  g.OH = gys[gys.size() - 2];
  g.OW = gys[gys.size() - 1];
  g.KH = g.KW = g.SH = g.SW = 1;
  g.PH = g.PW = 0;
  if (g.planes > 0 && g.OH * g.OW > 0 && (g.H == 0 || g.W == 0))
    raise_value_error(op, "argument 'x_shape' must have non-empty planes (H, W > 0), got an empty plane");
  checked_numel(op, "grad_x", xs, dt == DType::f32 ? 4 : 8);
  const std::vector<py::ssize_t> shape(xs.begin(), xs.end());
  auto run = [&](auto zero) -> py::array {
    using T = decltype(zero);
    const T* gyp = static_cast<const T*>(gy.data());
    return run_into<T>(shape, [&](T* gx) { cpu::adaptive_avg_pool2d_backward<T>(g, gyp, gx, get_num_threads()); });
  };
  return dt == DType::f32 ? run(0.0f) : run(0.0);
}

py::array avg_pool2d_backward(const py::object& grad_y, const py::object& x_shape, const py::object& kernel_size,
                              const py::object& stride, const py::object& padding) {
  const std::string op = "avg_pool2d_backward";
  DType dt;
  py::array gy = require_grad(op, grad_y, &dt);
  const std::vector<std::int64_t> xs = parse_shape(op, "x_shape", x_shape);
  cpu::PoolGeometry g;
  plane_shape(op, "x_shape", xs, &g);
  window(op, kernel_size, stride, padding, &g);
  std::vector<std::int64_t> want(xs);
  want[want.size() - 2] = g.OH;
  want[want.size() - 1] = g.OW;
  if (shape_of(gy) != want)
    raise_value_error(op, "argument 'grad_y' must have the pooled shape for 'x_shape', got " + shape_str(gy));
  checked_numel(op, "grad_x", xs, dt == DType::f32 ? 4 : 8);
  const std::vector<py::ssize_t> shape(xs.begin(), xs.end());
  auto run = [&](auto zero) -> py::array {
    using T = decltype(zero);
    const T* gyp = static_cast<const T*>(gy.data());
    return run_into<T>(shape, [&](T* gx) { cpu::avg_pool2d_backward<T>(g, gyp, gx, get_num_threads()); });
  };
  return dt == DType::f32 ? run(0.0f) : run(0.0);
}

}  // namespace ops
}  // namespace pyfastnn
