// conv2d / conv2d_backward: PyTorch's argument conventions (NCHW, OIHW,
// int-or-pair stride/padding/dilation, groups), checked here; the kernels in
// csrc/cpu/conv trust what they get.
#include "ops/conv2d.h"

#include "common/checks.h"
#include "common/size_math.h"
#include "cpu/conv/conv.h"
#include "runtime/thread_pool.h"

namespace pyfastnn {
namespace ops {

namespace {

// Elements of one zero-padded image the stride-1 kernels may copy (2**44).
constexpr std::int64_t kMaxPaddedImage = std::int64_t{1} << 44;

struct Checked {
  cpu::ConvGeometry g;
  DType dt;
  py::array x, w;
};

Checked check_conv(const std::string& op, const py::object& x_obj, const py::object& w_obj,
                   const py::object& stride, const py::object& padding, const py::object& dilation,
                   const py::object& groups) {
  Checked c;
  c.x = require_array(op, "x", x_obj);
  c.w = require_array(op, "w", w_obj);
  c.dt = require_float(op, "x", c.x);
  if (require_float(op, "w", c.w) != c.dt)
    raise_type_error(op, "arguments 'x' and 'w' must have the same dtype, got " + dtype_str(c.x) + " and " +
                             dtype_str(c.w));
  if (c.x.ndim() != 4) raise_value_error(op, "argument 'x' must be 4-D (N, C, H, W), got shape " + shape_str(c.x));
  if (c.w.ndim() != 4)
    raise_value_error(op, "argument 'w' must be 4-D (O, C/groups, kH, kW), got shape " + shape_str(c.w));
  cpu::ConvGeometry& g = c.g;
  g.N = c.x.shape(0); g.C = c.x.shape(1); g.H = c.x.shape(2); g.W = c.x.shape(3);
  g.O = c.w.shape(0); g.KH = c.w.shape(2); g.KW = c.w.shape(3);
  parse_int_pair(op, "stride", stride, 1, &g.SH, &g.SW);
  parse_int_pair(op, "dilation", dilation, 1, &g.DH, &g.DW);
  const SizeMath by_dilation(op, "dilation"), by_padding(op, "padding");
  const std::int64_t span_h = by_dilation.mul(g.DH, g.KH - 1), span_w = by_dilation.mul(g.DW, g.KW - 1);
  if (py::isinstance<py::str>(padding)) {
    const std::string mode = padding.cast<std::string>();
    if (mode == "valid") {
      g.PH = g.PW = 0;
    } else if (mode == "same") {
      if (g.SH != 1 || g.SW != 1) raise_value_error(op, "padding='same' needs stride 1");
      if (span_h % 2 || span_w % 2)
        raise_value_error(op, "padding='same' with an even effective kernel size needs asymmetric padding, "
                              "which is not supported; pad the input explicitly");
      g.PH = span_h / 2;
      g.PW = span_w / 2;
    } else {
      raise_value_error(op, "argument 'padding' must be an int, a pair of ints, 'valid' or 'same', got '" + mode + "'");
    }
  } else {
    parse_int_pair(op, "padding", padding, 0, &g.PH, &g.PW);
  }
  g.groups = int_arg(op, "groups", groups);
  if (g.groups < 1) raise_value_error(op, "argument 'groups' must be >= 1, got " + std::to_string(g.groups));
  if (g.C % g.groups)
    raise_value_error(op, "input channels " + std::to_string(g.C) + " of 'x' " + shape_str(c.x) +
                              " are not divisible by groups=" + std::to_string(g.groups));
  if (g.O % g.groups)
    raise_value_error(op, "output channels " + std::to_string(g.O) + " of 'w' " + shape_str(c.w) +
                              " are not divisible by groups=" + std::to_string(g.groups));
  if (c.w.shape(1) != g.C / g.groups)
    raise_value_error(op, "argument 'w' has shape " + shape_str(c.w) + "; expected (O, " +
                              std::to_string(g.C / g.groups) + ", kH, kW) for " + std::to_string(g.C) +
                              " input channels and groups=" + std::to_string(g.groups));
  if (g.KH == 0 || g.KW == 0) raise_value_error(op, "argument 'w' has an empty kernel, shape " + shape_str(c.w));
  // Every size the kernels derive, checked once here (they trust it): the
  // padded input, the effective kernel, and the offsets of the padded layout
  // the stride-1 kernels read (cpu/conv/conv.cpp: padded_layout).
  const std::int64_t hp = by_padding.add(g.H, by_padding.mul(2, g.PH));
  const std::int64_t wp = by_padding.add(g.W, by_padding.mul(2, g.PW));
  const std::int64_t ekh = by_dilation.add(span_h, 1), ekw = by_dilation.add(span_w, 1);
  if (ekh > hp || ekw > wp)
    raise_value_error(op, "kernel (" + std::to_string(ekh) + "x" + std::to_string(ekw) +
                              " with dilation) is larger than the padded input (" + std::to_string(hp) + "x" +
                              std::to_string(wp) + ") of 'x' " + shape_str(c.x));
  g.OH = (hp - ekh) / g.SH + 1;
  g.OW = (wp - ekw) / g.SW + 1;
  const std::int64_t plane = by_padding.mul(hp, wp), cg = g.C / g.groups;
  const std::int64_t padded = by_padding.add(by_padding.mul(plane, cg), by_dilation.add(span_w, 64));
  by_dilation.add(by_dilation.add(by_padding.mul(cg - 1, plane), by_dilation.mul(span_h, wp)), span_w);
  // Stride 1 runs on zero-padded copies of the images, up to 2**18 of them
  // side by side (cpu/conv/conv.cpp): one must stay far below 2**63 elements.
  if (g.SH == 1 && g.SW == 1 && padded > kMaxPaddedImage)
    raise_memory_error(op, "the zero-padded copy of one image of 'x' " + shape_str(c.x) + " (" + std::to_string(cg) +
                               " x " + std::to_string(hp) + " x " + std::to_string(wp) +
                               " elements for this padding and dilation) is too large to allocate");
  checked_numel(op, "output", {g.N, g.O, g.OH, g.OW}, c.x.itemsize());
  c.x = c_contiguous(c.x);
  c.w = c_contiguous(c.w);
  return c;
}

py::array check_bias(const std::string& op, const py::object& bias_obj, const Checked& c) {
  py::array b = require_array(op, "bias", bias_obj);
  if (dtype_of(b) != c.dt)
    raise_type_error(op, "argument 'bias' must have dtype " + dtype_str(c.x) + " like 'x', got " + dtype_str(b));
  if (b.ndim() != 1 || b.shape(0) != c.g.O)
    raise_value_error(op, "argument 'bias' must have shape (" + std::to_string(c.g.O) + ",), got " + shape_str(b));
  return c_contiguous(b);
}

template <class T>
py::array forward(const Checked& c, const void* bias) {
  const cpu::ConvGeometry& g = c.g;
  py::array_t<T> y({g.N, g.O, g.OH, g.OW});
  const T* b = static_cast<const T*>(bias);
  const T* x = static_cast<const T*>(c.x.data());
  const T* w = static_cast<const T*>(c.w.data());
  T* out = y.mutable_data();
  {
    py::gil_scoped_release release;
    cpu::conv2d_forward<T>(g, x, w, b, out, get_num_threads());
  }
  return std::move(y);
}

template <class T>
py::tuple backward(const Checked& c, const py::array& gy, bool need_gx, bool need_gw) {
  const cpu::ConvGeometry& g = c.g;
  // A first layer's input needs no gradient: skipping grad_x skips its col2im / flipped convolution.
  py::array_t<T> gx = need_gx ? py::array_t<T>({g.N, g.C, g.H, g.W}) : py::array_t<T>();
  py::array_t<T> gw = need_gw ? py::array_t<T>({g.O, g.C / g.groups, g.KH, g.KW}) : py::array_t<T>();
  py::array_t<T> gb(std::vector<py::ssize_t>{static_cast<py::ssize_t>(g.O)});
  const T* gyp = static_cast<const T*>(gy.data());
  const T* x = static_cast<const T*>(c.x.data());
  const T* w = static_cast<const T*>(c.w.data());
  T* gxp = need_gx ? gx.mutable_data() : nullptr;
  T* gwp = need_gw ? gw.mutable_data() : nullptr;
  T* gbp = gb.mutable_data();
  {
    py::gil_scoped_release release;
    cpu::conv2d_backward<T>(g, gyp, x, w, gxp, gwp, gbp, get_num_threads());
  }
  return py::make_tuple(need_gx ? py::object(gx) : py::none(), need_gw ? py::object(gw) : py::none(), gb);
}

}  // namespace

py::array conv2d(const py::object& x, const py::object& w, const py::object& bias, const py::object& stride,
                 const py::object& padding, const py::object& dilation, const py::object& groups) {
  const std::string op = "conv2d";
  Checked c = check_conv(op, x, w, stride, padding, dilation, groups);
  py::array b;  // keeps the contiguous bias alive during the call
  const void* bias_ptr = nullptr;
  if (!bias.is_none()) {
    b = check_bias(op, bias, c);
    bias_ptr = b.data();
  }
  if (c.dt == DType::f32) return forward<float>(c, bias_ptr);
  return forward<double>(c, bias_ptr);
}

py::tuple conv2d_backward(const py::object& grad_y, const py::object& x, const py::object& w,
                          const py::object& stride, const py::object& padding, const py::object& dilation,
                          const py::object& groups, bool need_grad_x, bool need_grad_w) {
  const std::string op = "conv2d_backward";
  Checked c = check_conv(op, x, w, stride, padding, dilation, groups);
  py::array gy = require_array(op, "grad_y", grad_y);
  if (dtype_of(gy) != c.dt)
    raise_type_error(op, "argument 'grad_y' must have dtype " + dtype_str(c.x) + " like 'x', got " + dtype_str(gy));
  const cpu::ConvGeometry& g = c.g;
  if (gy.ndim() != 4 || gy.shape(0) != g.N || gy.shape(1) != g.O || gy.shape(2) != g.OH || gy.shape(3) != g.OW)
    raise_value_error(op, "argument 'grad_y' must have the output's shape (" + std::to_string(g.N) + ", " +
                              std::to_string(g.O) + ", " + std::to_string(g.OH) + ", " + std::to_string(g.OW) +
                              "), got " + shape_str(gy));
  gy = c_contiguous(gy);
  if (c.dt == DType::f32) return backward<float>(c, gy, need_grad_x, need_grad_w);
  return backward<double>(c, gy, need_grad_x, need_grad_w);
}

}  // namespace ops
}  // namespace pyfastnn
