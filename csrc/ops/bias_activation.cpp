// bias_activation(x, bias, activation): act(x + bias) into a new array,
// rows split over the thread pool.
#include "ops/bias_activation.h"

#include <algorithm>

#include "common/checks.h"
#include "cpu/elementwise/elementwise.h"
#include "runtime/dispatch.h"
#include "runtime/parallel.h"

namespace pyfastnn {
namespace ops {

namespace {

const std::string kOp = "bias_activation";

template <class T>
py::array run(const py::array& x, const py::object& bias, Activation act) {
  using namespace pybind11::literals;
  py::array_t<T> y =
      py::array_t<T>::ensure(py::module_::import("numpy").attr("array")(x, "copy"_a = true, "order"_a = "C"));
  const std::int64_t rows = x.shape(0), cols = x.shape(1);
  const T* b = bias.is_none() ? nullptr : static_cast<const T*>(py::array(bias).data());
  T* out = y.mutable_data();
  const auto& k = cpu::elementwise_kernels<T>(active_isa());
  py::gil_scoped_release release;
  parallel_for(rows, std::max<std::int64_t>(1, (1 << 15) / std::max<std::int64_t>(1, cols)),
               [&](std::int64_t r0, std::int64_t r1) { k.bias_activation_rows(out + r0 * cols, b, r1 - r0, cols, act); });
  return std::move(y);
}

}  // namespace

py::array bias_activation(const py::object& x_obj, const py::object& bias_obj, const py::object& activation) {
  py::array x = require_array(kOp, "x", x_obj);
  const DType dt = require_float(kOp, "x", x);
  require_ndim(kOp, "x", x, 2, 2);
  Activation act = Activation::none;
  if (!activation.is_none()) {
    const std::string name = py::str(activation);
    if (name == "none" || !parse_activation(name.c_str(), &act))
      raise_value_error(kOp, "argument 'activation' must be one of None, " + activation_choices() + ", got '" +
                                 name + "'");
  }
  py::object bias = py::none();
  if (!bias_obj.is_none()) {
    py::array b = require_array(kOp, "bias", bias_obj);
    if (dtype_of(b) != dt)
      raise_type_error(kOp, "argument 'bias' must have dtype " + dtype_str(x) + " like 'x', got " + dtype_str(b));
    if (b.ndim() != 1 || b.shape(0) != x.shape(1))
      raise_value_error(kOp, "argument 'bias' must have shape (" + std::to_string(x.shape(1)) + ",), got " + shape_str(b));
    bias = py::module_::import("numpy").attr("ascontiguousarray")(b);
  }
  if (dt == DType::f32) return run<float>(x, bias, act);
  return run<double>(x, bias, act);
}

}  // namespace ops
}  // namespace pyfastnn
