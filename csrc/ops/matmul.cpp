// matmul: a (M,K) or (B,M,K) times b (K,N) or (B,K,N) (either given
// transposed), plus bias (N,), through a fused activation. Checks every
// argument, then hands strided views straight to the GEMM (no copies) — or,
// for one to four rows against a B whose columns are contiguous (x · Wᵀ with
// a Linear weight, as in a decode step), to the GEMV, which streams B once
// instead of packing it.
#include "ops/matmul.h"

#include "common/checks.h"
#include "cpu/gemm/gemm.h"
#include "cpu/gemm/gemv.h"

namespace pyfastnn {
namespace ops {

namespace {

const std::string kOp = "matmul";

struct MatView {
  std::int64_t batch, rows, cols;  // logical (after the transpose flag)
  std::ptrdiff_t batch_stride, rs, cs;
  const void* data;
};

MatView view_of(const py::array& arr, const std::vector<std::ptrdiff_t>& st, bool transpose) {
  MatView v;
  const int nd = static_cast<int>(arr.ndim());
  v.batch = nd == 3 ? arr.shape(0) : 1;
  v.batch_stride = nd == 3 ? st[0] : 0;
  v.rows = arr.shape(nd - 2);
  v.cols = arr.shape(nd - 1);
  v.rs = st[nd - 2];
  v.cs = st[nd - 1];
  if (transpose) {
    std::swap(v.rows, v.cols);
    std::swap(v.rs, v.cs);
  }
  v.data = arr.data();
  return v;
}

// The GEMV's shape: not batched, at most kGemvMaxRows rows of A with
// contiguous rows, and B (K x N) with contiguous columns (a row-major W (N, K)
// passed with trans_b), each W row long enough to stream.
bool gemv_shaped(const MatView& a, const MatView& b, std::int64_t batch) {
  return batch == 1 && a.rows >= 1 && a.rows <= cpu::kGemvMaxRows && a.cs == 1 &&
         b.rs == 1 && b.cols >= 16 && a.cols >= 16;
}

template <class T>
void run(const MatView& a, const MatView& b, std::int64_t batch, T* out, const T* bias, Activation act) {
  py::gil_scoped_release release;
  if (gemv_shaped(a, b, batch)) {
    cpu::gemv<T>(a.rows, b.cols, a.cols, static_cast<const T*>(a.data), a.rs, static_cast<const T*>(b.data), b.cs,
                 out, b.cols, bias, act);
    return;
  }
  cpu::gemm<T>(batch, a.rows, b.cols, a.cols, cpu::StridedMatrix{a.data, a.rs, a.cs},
               a.batch == 1 ? 0 : a.batch_stride, cpu::StridedMatrix{b.data, b.rs, b.cs},
               b.batch == 1 ? 0 : b.batch_stride, out, bias, act);
}

}  // namespace

py::array matmul(const py::object& a_obj, const py::object& b_obj, const py::object& bias_obj,
                 const py::object& activation, bool trans_a, bool trans_b) {
  py::array a = require_array(kOp, "a", a_obj);
  py::array b = require_array(kOp, "b", b_obj);
  const DType dt = require_float(kOp, "a", a);
  const DType dtb = require_float(kOp, "b", b);
  if (dt != dtb)
    raise_type_error(kOp, "arguments 'a' and 'b' must have the same dtype, got " + dtype_str(a) + " and " +
                              dtype_str(b));
  require_ndim(kOp, "a", a, 2, 3);
  require_ndim(kOp, "b", b, 2, 3);

  Activation act = Activation::none;
  if (!activation.is_none()) {
    if (!py::isinstance<py::str>(activation))
      raise_type_error(kOp, "argument 'activation' must be None or a string, got " +
                                py::str(py::type::of(activation).attr("__name__")).cast<std::string>());
    const std::string name = activation.cast<std::string>();
    if (name == "none" || !parse_activation(name.c_str(), &act))
      raise_value_error(kOp, "argument 'activation' must be one of None, " + activation_choices() + ", got '" +
                                 name + "'");
  }

  std::vector<std::ptrdiff_t> sa, sb;
  a = with_element_strides(a, &sa);
  b = with_element_strides(b, &sb);
  const MatView va = view_of(a, sa, trans_a), vb = view_of(b, sb, trans_b);
  if (va.cols != vb.rows)
    raise_value_error(kOp, "inner dimensions differ: 'a' has shape " + shape_str(a) + (trans_a ? " (transposed)" : "") +
                               " giving K=" + std::to_string(va.cols) + ", 'b' has shape " + shape_str(b) +
                               (trans_b ? " (transposed)" : "") + " giving K=" + std::to_string(vb.rows));
  if (va.batch != vb.batch && va.batch != 1 && vb.batch != 1)
    raise_value_error(kOp, "batch sizes differ: 'a' has shape " + shape_str(a) + ", 'b' has shape " + shape_str(b));
  const bool batched = a.ndim() == 3 || b.ndim() == 3;
  // A batch of 1 broadcasts, also against an empty batch (numpy: (0,m,k) @ (k,n) -> (0,m,n)).
  const std::int64_t batch = (va.batch == 0 || vb.batch == 0) ? 0 : std::max(va.batch, vb.batch);
  const std::int64_t M = va.rows, N = vb.cols;

  py::array bias;  // kept alive until the GEMM is done
  const void* bias_ptr = nullptr;
  if (!bias_obj.is_none()) {
    bias = require_array(kOp, "bias", bias_obj);
    if (dtype_of(bias) != dt)
      raise_type_error(kOp, "argument 'bias' must have dtype " + dtype_str(a) + " like 'a', got " + dtype_str(bias));
    if (bias.ndim() != 1 || bias.shape(0) != N)
      raise_value_error(kOp, "argument 'bias' must have shape (" + std::to_string(N) + ",), got " + shape_str(bias));
    bias = py::array::ensure(py::module_::import("numpy").attr("ascontiguousarray")(bias));
    bias_ptr = bias.data();
  }

  std::vector<std::int64_t> out_shape = batched ? std::vector<std::int64_t>{batch, M, N} : std::vector<std::int64_t>{M, N};
  checked_numel(kOp, "output", out_shape, a.itemsize());
  std::vector<py::ssize_t> shape(out_shape.begin(), out_shape.end());
  if (dt == DType::f32) {
    py::array_t<float> out(shape);
    run<float>(va, vb, batch, out.mutable_data(), static_cast<const float*>(bias_ptr), act);
    return std::move(out);
  }
  py::array_t<double> out(shape);
  run<double>(va, vb, batch, out.mutable_data(), static_cast<const double*>(bias_ptr), act);
  return std::move(out);
}

}  // namespace ops
}  // namespace pyfastnn
