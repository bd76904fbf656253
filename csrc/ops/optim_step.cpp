// sgd_step / adam_step / rmsprop_step: torch.optim's single-tensor updates as
// one fused pass, in place. The hyper-parameter checks are torch's (its
// optimizers refuse the same values), so a config that runs there runs here.
#include "ops/optim_step.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "common/checks.h"
#include "cpu/optim/optim.h"
#include "runtime/dispatch.h"
#include "runtime/parallel.h"

namespace pyfastnn {
namespace ops {

namespace {

// A real-number hyper-parameter: Python int/float or anything with __float__
// (numpy scalars, 0-d tensors); bool and str are refused, NaN never passes a
// range check below.
double real_arg(const std::string& op, const char* name, const py::object& v) {
  const bool number = !py::isinstance<py::bool_>(v) && !py::isinstance<py::str>(v) &&
                      (py::isinstance<py::float_>(v) || py::isinstance<py::int_>(v) || py::hasattr(v, "__float__"));
  if (!number)
    raise_type_error(op, std::string("argument '") + name + "' must be a real number, got " +
                             py::str(py::type::of(v).attr("__name__")).cast<std::string>());
  try {
    return py::float_(v).cast<double>();
  } catch (py::error_already_set&) {  // e.g. a numpy array of several elements
    raise_type_error(op, std::string("argument '") + name + "' must be a real number, got " +
                             py::str(py::repr(v)).cast<std::string>());
  }
}

std::string num_str(double x) { return py::str(py::float_(x)).cast<std::string>(); }

void require_at_least(const std::string& op, const char* name, double x, double lo) {
  if (!(x >= lo))
    raise_value_error(op, std::string("argument '") + name + "' must be >= " + num_str(lo) + ", got " + num_str(x));
}

// 0 <= beta < 1, as torch.optim.Adam requires.
void require_beta(const std::string& op, const char* name, double x) {
  if (!(x >= 0.0 && x < 1.0))
    raise_value_error(op, std::string("argument '") + name + "' must be in [0, 1), got " + num_str(x));
}

// The arrays of one step, checked against param and collected so that their
// memory can be compared once all are known.
class Operands {
 public:
  Operands(const std::string& op, const py::object& param) : op_(op) {
    param_ = require_array(op, "param", param);
    dt_ = require_float(op, "param", param_);
    require_layout("param", param_, true);
    add("param", param_, true);
    param_data_ = param_.mutable_data();
  }

  DType dtype() const { return dt_; }
  std::int64_t size() const { return static_cast<std::int64_t>(param_.size()); }
  void* param_data() const { return param_data_; }

  // Another array of the step: param's dtype and shape, C-contiguous, and
  // writable when the step updates it.
  void* array(const char* name, const py::object& obj, bool written) {
    if (obj.is_none())
      raise_type_error(op_, std::string("argument '") + name + "' must be an array, got None");
    py::array a = require_array(op_, name, obj);
    if (dtype_of(a) != dt_)
      raise_type_error(op_, std::string("argument '") + name + "' must have dtype " + dtype_str(param_) +
                                " like 'param', got " + dtype_str(a));
    bool same_shape = a.ndim() == param_.ndim();
    for (py::ssize_t i = 0; same_shape && i < a.ndim(); ++i) same_shape = a.shape(i) == param_.shape(i);
    if (!same_shape)
      raise_value_error(op_, std::string("argument '") + name + "' must have the shape of 'param' " +
                                 shape_str(param_) + ", got " + shape_str(a));
    require_layout(name, a, written);
    add(name, a, written);
    return written ? a.mutable_data() : const_cast<void*>(a.data());
  }

  // Updating an array that another argument also reads or writes would make
  // the result depend on the order of the loads and stores (and on where the
  // threads split), so the arrays written must overlap nothing else.
  void require_disjoint() const {
    for (std::size_t i = 0; i < all_.size(); ++i)
      for (std::size_t j = i + 1; j < all_.size(); ++j) {
        const Entry& a = all_[i];
        const Entry& b = all_[j];
        if (!(a.written || b.written) || a.begin == a.end || b.begin == b.end) continue;
        if (a.begin < b.end && b.begin < a.end)
          raise_value_error(op_, std::string("arguments '") + a.name + "' and '" + b.name +
                                     "' share memory; each must be its own array");
      }
  }

 private:
  struct Entry {
    const char* name;
    const char* begin;
    const char* end;
    bool written;
  };

  void require_layout(const char* name, const py::array& a, bool written) const {
    // Copying to fix the layout would update the copy, not the caller's array.
    if (!(a.flags() & py::array::c_style))
      raise_value_error(op_, std::string("argument '") + name +
                                 "' must be C-contiguous (it is updated in place, so it cannot be copied)");
    if (written && !a.writeable())
      raise_value_error(op_, std::string("argument '") + name + "' is read-only; it is updated in place");
  }

  void add(const char* name, const py::array& a, bool written) {
    const char* p = static_cast<const char*>(a.data());
    all_.push_back({name, p, p + a.nbytes(), written});
  }

  std::string op_;
  py::array param_;
  void* param_data_ = nullptr;
  DType dt_ = DType::other;
  std::vector<Entry> all_;
};

// Runs f(begin, count) over [0, n) in chunks the threads claim: one thread
// below 64K elements (waking workers costs more than the pass), otherwise
// chunks of at least 32K elements on 64-byte boundaries, so no cache line is
// shared. Elementwise: any split gives the same bits.
template <class F>
void run_split(std::int64_t n, std::size_t itemsize, const F& f) {
  if (n == 0) return;
  py::gil_scoped_release release;
  const std::int64_t line = 64 / static_cast<std::int64_t>(itemsize);
  parallel_for(n, std::int64_t{1} << 15, [&](std::int64_t b, std::int64_t e) {
    b = b / line * line;  // chunk edges moved down to a cache line; the last chunk still ends at n
    if (e != n) e = e / line * line;
    if (e > b) f(b, e - b);
  });
}

const std::string kSgd = "sgd_step";
const std::string kAdam = "adam_step";
const std::string kRmsprop = "rmsprop_step";

template <class T>
T* at(void* p, std::int64_t i) {
  return p ? static_cast<T*>(p) + i : nullptr;
}

// Runs step(kernels, T{}, begin, count) for the dtype of the operands, split
// over the pool.
template <class Operands_, class Step>
void run_step(const Operands_& ops, const Step& step) {
  auto go = [&](auto tag) {
    using T = decltype(tag);
    const auto& k = cpu::optim_kernels<T>(active_isa());
    run_split(ops.size(), sizeof(T), [&](std::int64_t b, std::int64_t n) { step(k, tag, b, n); });
  };
  if (ops.dtype() == DType::f32) go(float{});
  else go(double{});
}

}  // namespace

void sgd_step(const py::object& param, const py::object& grad, const py::object& momentum_buf, const py::object& lr,
              const py::object& momentum, const py::object& dampening, bool nesterov, const py::object& weight_decay,
              bool first_step) {
  cpu::SgdParams h;
  h.lr = real_arg(kSgd, "lr", lr);
  h.momentum = real_arg(kSgd, "momentum", momentum);
  h.dampening = real_arg(kSgd, "dampening", dampening);
  h.weight_decay = real_arg(kSgd, "weight_decay", weight_decay);
  h.nesterov = nesterov;
  h.first_step = first_step;
  require_at_least(kSgd, "lr", h.lr, 0.0);
  require_at_least(kSgd, "momentum", h.momentum, 0.0);
  require_at_least(kSgd, "weight_decay", h.weight_decay, 0.0);
  if (nesterov && (h.momentum <= 0 || h.dampening != 0))
    raise_value_error(kSgd, "nesterov=True needs 'momentum' > 0 and 'dampening' == 0, got momentum=" +
                                num_str(h.momentum) + ", dampening=" + num_str(h.dampening));

  Operands ops(kSgd, param);
  void* g = ops.array("grad", grad, false);
  void* buf = nullptr;
  if (h.momentum != 0) {
    if (momentum_buf.is_none())
      raise_value_error(kSgd, "argument 'momentum_buf' is required when momentum > 0 (momentum=" +
                                  num_str(h.momentum) + "); pass an array like 'param' and first_step=True on the "
                                  "first step");
    buf = ops.array("momentum_buf", momentum_buf, true);
  }
  ops.require_disjoint();
  void* p = ops.param_data();
  run_step(ops, [&](const auto& k, auto tag, std::int64_t b, std::int64_t n) {
    using T = decltype(tag);
    k.sgd(at<T>(p, b), at<T>(g, b), at<T>(buf, b), n, h);
  });
}

void adam_step(const py::object& param, const py::object& grad, const py::object& exp_avg,
               const py::object& exp_avg_sq, const py::object& step, const py::object& lr, const py::object& beta1,
               const py::object& beta2, const py::object& eps, const py::object& weight_decay,
               bool decoupled_weight_decay, bool amsgrad, const py::object& max_exp_avg_sq) {
  cpu::AdamParams h;
  h.step = real_arg(kAdam, "step", step);
  h.lr = real_arg(kAdam, "lr", lr);
  h.beta1 = real_arg(kAdam, "beta1", beta1);
  h.beta2 = real_arg(kAdam, "beta2", beta2);
  h.eps = real_arg(kAdam, "eps", eps);
  h.weight_decay = real_arg(kAdam, "weight_decay", weight_decay);
  h.decoupled_weight_decay = decoupled_weight_decay;
  h.amsgrad = amsgrad;
  // step counts from 1: at 0 the bias corrections would divide by zero.
  if (!(h.step >= 1) || !std::isfinite(h.step))
    raise_value_error(kAdam, "argument 'step' must be the step count after the increment (>= 1), got " +
                                 num_str(h.step));
  require_at_least(kAdam, "lr", h.lr, 0.0);
  require_at_least(kAdam, "eps", h.eps, 0.0);
  require_beta(kAdam, "beta1", h.beta1);
  require_beta(kAdam, "beta2", h.beta2);
  require_at_least(kAdam, "weight_decay", h.weight_decay, 0.0);

  Operands ops(kAdam, param);
  void* g = ops.array("grad", grad, false);
  void* m = ops.array("exp_avg", exp_avg, true);
  void* v = ops.array("exp_avg_sq", exp_avg_sq, true);
  void* vmax = nullptr;
  if (amsgrad) {
    if (max_exp_avg_sq.is_none())
      raise_value_error(kAdam, "argument 'max_exp_avg_sq' is required when amsgrad=True; pass zeros like 'param' "
                               "on the first step");
    vmax = ops.array("max_exp_avg_sq", max_exp_avg_sq, true);
  }
  ops.require_disjoint();
  void* p = ops.param_data();
  run_step(ops, [&](const auto& k, auto tag, std::int64_t b, std::int64_t n) {
    using T = decltype(tag);
    k.adam(at<T>(p, b), at<T>(g, b), at<T>(m, b), at<T>(v, b), at<T>(vmax, b), n, h);
  });
}

void rmsprop_step(const py::object& param, const py::object& grad, const py::object& square_avg,
                  const py::object& lr, const py::object& alpha, const py::object& eps,
                  const py::object& weight_decay, const py::object& momentum, const py::object& momentum_buf,
                  bool centered, const py::object& grad_avg) {
  cpu::RmspropParams h;
  h.lr = real_arg(kRmsprop, "lr", lr);
  h.alpha = real_arg(kRmsprop, "alpha", alpha);
  h.eps = real_arg(kRmsprop, "eps", eps);
  h.weight_decay = real_arg(kRmsprop, "weight_decay", weight_decay);
  h.momentum = real_arg(kRmsprop, "momentum", momentum);
  h.centered = centered;
  require_at_least(kRmsprop, "lr", h.lr, 0.0);
  require_at_least(kRmsprop, "alpha", h.alpha, 0.0);
  require_at_least(kRmsprop, "eps", h.eps, 0.0);
  require_at_least(kRmsprop, "weight_decay", h.weight_decay, 0.0);
  require_at_least(kRmsprop, "momentum", h.momentum, 0.0);

  Operands ops(kRmsprop, param);
  void* g = ops.array("grad", grad, false);
  void* sq = ops.array("square_avg", square_avg, true);
  void* ga = nullptr;
  void* buf = nullptr;
  if (centered) {
    if (grad_avg.is_none())
      raise_value_error(kRmsprop, "argument 'grad_avg' is required when centered=True; pass zeros like 'param' "
                                  "on the first step");
    ga = ops.array("grad_avg", grad_avg, true);
  }
  if (h.momentum > 0) {
    if (momentum_buf.is_none())
      raise_value_error(kRmsprop, "argument 'momentum_buf' is required when momentum > 0 (momentum=" +
                                      num_str(h.momentum) + "); pass zeros like 'param' on the first step");
    buf = ops.array("momentum_buf", momentum_buf, true);
  }
  ops.require_disjoint();
  void* p = ops.param_data();
  run_step(ops, [&](const auto& k, auto tag, std::int64_t b, std::int64_t n) {
    using T = decltype(tag);
    k.rmsprop(at<T>(p, b), at<T>(g, b), at<T>(sq, b), at<T>(ga, b), at<T>(buf, b), n, h);
  });
}

}  // namespace ops
}  // namespace pyfastnn
