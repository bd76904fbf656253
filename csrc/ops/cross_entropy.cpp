// cross_entropy: log-softmax + NLL fused, mean over the rows whose target is
// not ignore_index, optional label smoothing (PyTorch's CrossEntropyLoss).
// The backward pass recomputes the softmax from the logits.
#include <cmath>

#include "common/checks.h"
#include "cpu/rowwise/rowwise.h"
#include "ops/rowwise_ops.h"
#include "runtime/dispatch.h"
#include "runtime/parallel.h"

namespace pyfastnn {
namespace ops {

namespace {

// Rows per chunk: about 8K logits, so a chunk is worth a thread.
std::int64_t row_grain(std::int64_t classes) { return std::max<std::int64_t>(1, 8192 / std::max<std::int64_t>(1, classes)); }
// At most this many partial sums (a few hundred bytes).
constexpr std::int64_t kMaxLossChunks = 256;

struct Checked {
  py::array logits, target;
  DType dt;
  std::int64_t rows, classes, valid;
};

Checked check(const std::string& op, const py::object& logits_obj, const py::object& target_obj,
              std::int64_t ignore_index, double smoothing) {
  Checked c;
  c.logits = require_array(op, "logits", logits_obj);
  c.dt = require_float(op, "logits", c.logits);
  if (c.logits.ndim() != 2)
    raise_value_error(op, "argument 'logits' must be 2-D (N, C), got shape " + shape_str(c.logits));
  c.target = require_array(op, "target", target_obj);
  if (c.target.dtype().kind() != 'i' && c.target.dtype().kind() != 'u')
    raise_type_error(op, "argument 'target' must hold integer class indices, got dtype " + dtype_str(c.target));
  if (c.target.ndim() != 1 || c.target.shape(0) != c.logits.shape(0))
    raise_value_error(op, "argument 'target' must have shape (" + std::to_string(c.logits.shape(0)) + ",), got " +
                              shape_str(c.target));
  if (!(smoothing >= 0.0 && smoothing <= 1.0))
    raise_value_error(op, "argument 'label_smoothing' must be in [0, 1], got " + std::to_string(smoothing));
  c.rows = c.logits.shape(0);
  c.classes = c.logits.shape(1);
  c.logits = c_contiguous(c.logits);
  c.target = py::array::ensure(py::module_::import("numpy").attr("ascontiguousarray")(c.target, "int64"));
  const std::int64_t* t = static_cast<const std::int64_t*>(c.target.data());
  c.valid = 0;
  for (std::int64_t r = 0; r < c.rows; ++r) {
    if (t[r] == ignore_index) continue;
    if (t[r] < 0 || t[r] >= c.classes)
      raise_value_error(op, "argument 'target' holds class " + std::to_string(t[r]) + " at position " +
                                std::to_string(r) + ", outside [0, " + std::to_string(c.classes) + ")");
    ++c.valid;
  }
  return c;
}

}  // namespace

double cross_entropy(const py::object& logits, const py::object& target, std::int64_t ignore_index,
                     double smoothing) {
  const Checked c = check("cross_entropy", logits, target, ignore_index, smoothing);
  if (c.classes == 0 && c.rows > 0) raise_value_error("cross_entropy", "argument 'logits' has no classes (C = 0)");
  const void* lp = c.logits.data();
  const std::int64_t* tp = static_cast<const std::int64_t*>(c.target.data());
  double total = 0;
  auto run = [&](auto zero) {
    using T = decltype(zero);
    const auto f = cpu::rowwise_kernels<T>(active_isa()).cross_entropy;
    // Row chunks fixed by the shape, their sums added in chunk order: the
    // same total for any thread count.
    const FixedChunks chunks = fixed_chunks(c.rows, row_grain(c.classes), kMaxLossChunks);
    std::vector<double> sums(static_cast<std::size_t>(chunks.count), 0.0);
    parallel_chunks(chunks.count, get_num_threads(), [&](std::int64_t i) {
      const std::int64_t r0 = chunks.begin(i), r1 = chunks.end(i);
      sums[static_cast<std::size_t>(i)] = f(static_cast<const T*>(lp) + r0 * c.classes, tp + r0, r1 - r0, c.classes,
                                            ignore_index, smoothing, nullptr, 0.0);
    });
    for (double s : sums) total += s;
  };
  {
    py::gil_scoped_release release;
    c.dt == DType::f32 ? run(0.0f) : run(0.0);
  }
  // Like PyTorch: the mean over no valid rows is 0/0.
  return c.valid ? total / static_cast<double>(c.valid) : std::nan("");
}

py::array cross_entropy_backward(const py::object& logits, const py::object& target, double grad,
                                 std::int64_t ignore_index, double smoothing) {
  const Checked c = check("cross_entropy_backward", logits, target, ignore_index, smoothing);
  py::array out(c.logits.dtype(), std::vector<py::ssize_t>{static_cast<py::ssize_t>(c.rows),
                                                            static_cast<py::ssize_t>(c.classes)});
  const void* lp = c.logits.data();
  const std::int64_t* tp = static_cast<const std::int64_t*>(c.target.data());
  void* op_ = out.mutable_data();
  const double scale = c.valid ? grad / static_cast<double>(c.valid) : std::nan("");
  auto run = [&](auto zero) {
    using T = decltype(zero);
    const auto f = cpu::rowwise_kernels<T>(active_isa()).cross_entropy;
    parallel_for(c.rows, row_grain(c.classes), [&](std::int64_t r0, std::int64_t r1) {
      f(static_cast<const T*>(lp) + r0 * c.classes, tp + r0, r1 - r0, c.classes, ignore_index, smoothing,
        static_cast<T*>(op_) + r0 * c.classes, scale);
    });
  };
  {
    py::gil_scoped_release release;
    c.dt == DType::f32 ? run(0.0f) : run(0.0);
  }
  return out;
}

}  // namespace ops
}  // namespace pyfastnn
