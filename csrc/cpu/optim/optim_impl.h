// Templates behind OptimKernels; included once per ISA translation unit.
//
// Each step reads every array once and writes each updated one once. The
// options become template flags, so the inner loop carries no branches and
// the disabled terms cost nothing (and cannot change a result: torch skips
// them too, e.g. `g + 0 * p` would turn an infinite p into a NaN update).
// The operations and their order are those of torch's vectorised CPU kernels
// (each scalar rounded to T once, the same FMAs; built with -ffp-contract=off
// so no other product gets fused): at the SIMD levels whatever does not pass
// through a sqrt comes out bit-identical. sqrt differs now and then by an ulp:
// torch's float sqrt (MKL's) is not correctly rounded, the instruction is.
#pragma once
#include <cmath>
#include <type_traits>

#include "cpu/optim/optim.h"
#include "cpu/vec/vec.h"

namespace pyfastnn {
namespace cpu {
namespace PFN_ISA_NS {

namespace optim_detail {

// Loads and stores at one position of the walk: whole vectors, or the masked
// tail, so that the body is written once for both.
template <class T, bool Full>
struct At {
  std::int64_t i;
  int w;
  Vec<T> load(const T* p) const {
    if constexpr (Full) return Vec<T>::load(p + i);
    else return Vec<T>::load_partial(p + i, w);
  }
  void store(T* p, Vec<T> v) const {
    if constexpr (Full) v.store(p + i);
    else v.store_partial(p + i, w);
  }
};

template <class T, class Body>
inline void for_each_vec(std::int64_t n, const Body& body) {
  constexpr int W = Vec<T>::size;
  std::int64_t i = 0;
  for (; i + W <= n; i += W) body(At<T, true>{i, W});
  if (i < n) body(At<T, false>{i, static_cast<int>(n - i)});
}

// Calls f with std::true_type or std::false_type, turning a runtime option
// into a compile-time one.
template <class F>
inline void with_flag(bool b, const F& f) {
  if (b) f(std::true_type{});
  else f(std::false_type{});
}

// torch.lerp(a, b, w) for a scalar weight: a + w (b - a) for |w| < 0.5,
// else b + (w - 1) (b - a), so that the result is exact at both ends.
template <bool SmallWeight, class V>
inline V lerp(V a, V b, V w, V w_minus_1) {
  const V d = b - a;
  if constexpr (SmallWeight) return V::fma(w, d, a);
  else return V::fma(w_minus_1, d, b);
}

}  // namespace optim_detail

template <class T>
void sgd(T* param, const T* grad, T* buf, std::int64_t n, const SgdParams& h) {
  using V = Vec<T>;
  using namespace optim_detail;
  const V wd = V::broadcast(static_cast<T>(h.weight_decay));
  const V mom = V::broadcast(static_cast<T>(h.momentum));
  const V keep = V::broadcast(static_cast<T>(1.0 - h.dampening));
  const V neg_lr = V::broadcast(static_cast<T>(-h.lr));
  with_flag(h.weight_decay != 0, [&](auto decay) {
    with_flag(h.momentum != 0, [&](auto use_buf) {
      with_flag(h.nesterov, [&](auto nesterov) {
        with_flag(h.first_step, [&](auto first) {
          for_each_vec<T>(n, [&](auto at) {
            V p = at.load(param);
            V g = at.load(grad);
            if constexpr (decltype(decay)::value) g = V::fma(wd, p, g);
            if constexpr (decltype(use_buf)::value) {
              V b;
              if constexpr (decltype(first)::value) b = g;
              else b = V::fma(keep, g, at.load(buf) * mom);
              at.store(buf, b);
              if constexpr (decltype(nesterov)::value) g = V::fma(mom, b, g);
              else g = b;
            }
            at.store(param, V::fma(neg_lr, g, p));
          });
        });
      });
    });
  });
}

template <class T>
void adam(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, std::int64_t n,
          const AdamParams& h) {
  using V = Vec<T>;
  using namespace optim_detail;
  // Bias corrections in double from the (double) step count, as torch takes
  // them from Python floats.
  const double bc1 = 1.0 - std::pow(h.beta1, h.step);
  const double bc2 = 1.0 - std::pow(h.beta2, h.step);
  const V neg_step_size = V::broadcast(static_cast<T>(-(h.lr / bc1)));
  const V bc2_sqrt = V::broadcast(static_cast<T>(std::sqrt(bc2)));
  const V eps = V::broadcast(static_cast<T>(h.eps));
  const V wd = V::broadcast(static_cast<T>(h.weight_decay));
  const V shrink = V::broadcast(static_cast<T>(1.0 - h.lr * h.weight_decay));
  const T w1 = static_cast<T>(1.0 - h.beta1);
  const V w1v = V::broadcast(w1), w1_minus_1 = V::broadcast(w1 - T(1));
  const V beta2 = V::broadcast(static_cast<T>(h.beta2));
  const V c2 = V::broadcast(static_cast<T>(1.0 - h.beta2));
  const bool has_wd = h.weight_decay != 0;
  with_flag(has_wd && h.decoupled_weight_decay, [&](auto decoupled) {
    with_flag(has_wd && !h.decoupled_weight_decay, [&](auto coupled) {
      with_flag(h.amsgrad, [&](auto ams) {
        with_flag(std::abs(w1) < T(0.5), [&](auto small_w1) {
          for_each_vec<T>(n, [&](auto at) {
            V p = at.load(param);
            V g = at.load(grad);
            if constexpr (decltype(decoupled)::value) p = p * shrink;
            if constexpr (decltype(coupled)::value) g = V::fma(wd, p, g);
            const V m = lerp<decltype(small_w1)::value>(at.load(exp_avg), g, w1v, w1_minus_1);
            at.store(exp_avg, m);
            V v = V::fma(c2 * g, g, at.load(exp_avg_sq) * beta2);
            at.store(exp_avg_sq, v);
            if constexpr (decltype(ams)::value) {
              // max() returns its second operand on a NaN, so a NaN in exp_avg_sq
              // reaches the running maximum as torch.maximum's would (a NaN there
              // stays in exp_avg_sq for good, so the other side needs no test).
              v = V::max(at.load(max_exp_avg_sq), v);
              at.store(max_exp_avg_sq, v);
            }
            const V denom = V::sqrt(v) / bc2_sqrt + eps;
            at.store(param, p + (neg_step_size * m) / denom);
          });
        });
      });
    });
  });
}

template <class T>
void rmsprop(T* param, const T* grad, T* square_avg, T* grad_avg, T* buf, std::int64_t n, const RmspropParams& h) {
  using V = Vec<T>;
  using namespace optim_detail;
  const V wd = V::broadcast(static_cast<T>(h.weight_decay));
  const V alpha = V::broadcast(static_cast<T>(h.alpha));
  const T w = static_cast<T>(1.0 - h.alpha);
  const V wv = V::broadcast(w), w_minus_1 = V::broadcast(w - T(1));
  const V eps = V::broadcast(static_cast<T>(h.eps));
  const V mom = V::broadcast(static_cast<T>(h.momentum));
  const V neg_lr = V::broadcast(static_cast<T>(-h.lr));
  with_flag(h.weight_decay != 0, [&](auto decay) {
    with_flag(h.centered, [&](auto centered) {
      with_flag(h.momentum > 0, [&](auto use_buf) {
        with_flag(std::abs(w) < T(0.5), [&](auto small_w) {
          for_each_vec<T>(n, [&](auto at) {
            const V p = at.load(param);
            V g = at.load(grad);
            if constexpr (decltype(decay)::value) g = V::fma(wd, p, g);
            const V sq = V::fma(wv * g, g, at.load(square_avg) * alpha);
            at.store(square_avg, sq);
            V avg;
            if constexpr (decltype(centered)::value) {
              const V ga = lerp<decltype(small_w)::value>(at.load(grad_avg), g, wv, w_minus_1);
              at.store(grad_avg, ga);
              avg = V::sqrt(V::fma(V::zero() - ga, ga, sq));
            } else {
              avg = V::sqrt(sq);
            }
            avg = avg + eps;
            if constexpr (decltype(use_buf)::value) {
              const V b = at.load(buf) * mom + g / avg;
              at.store(buf, b);
              at.store(param, V::fma(neg_lr, b, p));
            } else {
              at.store(param, p + (neg_lr * g) / avg);
            }
          });
        });
      });
    });
  });
}

template <class T>
OptimKernels<T> make_optim_kernels() {
  return OptimKernels<T>{&sgd<T>, &adam<T>, &rmsprop<T>};
}

}  // namespace PFN_ISA_NS
}  // namespace cpu
}  // namespace pyfastnn
