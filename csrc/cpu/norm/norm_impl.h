// Templates behind NormKernels; included once per ISA translation unit. Each
// loop keeps several vector accumulators (a fixed order for a given n).
#pragma once
#include "cpu/norm/norm.h"
#include "cpu/vec/vec.h"

namespace pyfastnn {
namespace cpu {
namespace PFN_ISA_NS {

// Lanes of a vector added in lane order, as double.
template <class T>
inline double lane_sum(Vec<T> v) {
  alignas(64) T lanes[Vec<T>::size];
  v.store(lanes);
  double s = 0;
  for (int j = 0; j < Vec<T>::size; ++j) s += static_cast<double>(lanes[j]);
  return s;
}

// reference: s = 0; for (i < n) s += x[i]
template <class T>
double sum(const T* x, std::int64_t n) {
  using V = Vec<T>;
  constexpr int W = V::size;
  V a0 = V::zero(), a1 = V::zero(), a2 = V::zero(), a3 = V::zero();
  std::int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    a0 = a0 + V::load(x + i);
    a1 = a1 + V::load(x + i + W);
    a2 = a2 + V::load(x + i + 2 * W);
    a3 = a3 + V::load(x + i + 3 * W);
  }
  for (; i + W <= n; i += W) a0 = a0 + V::load(x + i);
  if (i < n) a1 = a1 + V::load_partial(x + i, static_cast<int>(n - i));
  return lane_sum((a0 + a1) + (a2 + a3));
}

// reference: s = 0; for (i < n) s += (x[i] - mean)^2
template <class T>
double sum_sq_dev(const T* x, std::int64_t n, T mean) {
  using V = Vec<T>;
  constexpr int W = V::size;
  const V m = V::broadcast(mean);
  V a0 = V::zero(), a1 = V::zero(), a2 = V::zero(), a3 = V::zero();
  std::int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    const V d0 = V::load(x + i) - m, d1 = V::load(x + i + W) - m;
    const V d2 = V::load(x + i + 2 * W) - m, d3 = V::load(x + i + 3 * W) - m;
    a0 = V::fma(d0, d0, a0);
    a1 = V::fma(d1, d1, a1);
    a2 = V::fma(d2, d2, a2);
    a3 = V::fma(d3, d3, a3);
  }
  for (; i + W <= n; i += W) {
    const V d = V::load(x + i) - m;
    a0 = V::fma(d, d, a0);
  }
  T tail = 0;  // scalar: a masked load would give 0 - mean in the lanes past n
  for (; i < n; ++i) {
    const T d = x[i] - mean;
    tail += d * d;
  }
  return lane_sum((a0 + a1) + (a2 + a3)) + static_cast<double>(tail);
}

// reference: y[i] = x[i] * scale + shift
template <class T>
void scale_shift(const T* x, T* y, std::int64_t n, T scale, T shift) {
  using V = Vec<T>;
  constexpr int W = V::size;
  const V s = V::broadcast(scale), b = V::broadcast(shift);
  std::int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    V::fma(V::load(x + i), s, b).store(y + i);
    V::fma(V::load(x + i + W), s, b).store(y + i + W);
  }
  for (; i + W <= n; i += W) V::fma(V::load(x + i), s, b).store(y + i);
  if (i < n) {
    const int r = static_cast<int>(n - i);
    V::fma(V::load_partial(x + i, r), s, b).store_partial(y + i, r);
  }
}

// reference: sg += g[i]; sgd += g[i] * (x[i] - mean)
template <class T>
void grad_sums(const T* g, const T* x, std::int64_t n, T mean, double* sum_g, double* sum_gd) {
  using V = Vec<T>;
  constexpr int W = V::size;
  const V m = V::broadcast(mean);
  V g0 = V::zero(), g1 = V::zero(), d0 = V::zero(), d1 = V::zero();
  std::int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const V ga = V::load(g + i), gb = V::load(g + i + W);
    g0 = g0 + ga;
    g1 = g1 + gb;
    d0 = V::fma(ga, V::load(x + i) - m, d0);
    d1 = V::fma(gb, V::load(x + i + W) - m, d1);
  }
  for (; i + W <= n; i += W) {
    const V ga = V::load(g + i);
    g0 = g0 + ga;
    d0 = V::fma(ga, V::load(x + i) - m, d0);
  }
  if (i < n) {  // lanes past n load g = 0, so they add nothing to either sum
    const int r = static_cast<int>(n - i);
    const V ga = V::load_partial(g + i, r);
    g1 = g1 + ga;
    d1 = V::fma(ga, V::load_partial(x + i, r) - m, d1);
  }
  *sum_g = lane_sum(g0 + g1);
  *sum_gd = lane_sum(d0 + d1);
}

// reference: gx[i] = a * g[i] + (b * (x[i] - mean) + c)
template <class T>
void grad_apply(const T* g, const T* x, T* gx, std::int64_t n, T a, T b, T mean, T c) {
  using V = Vec<T>;
  constexpr int W = V::size;
  const V av = V::broadcast(a), bv = V::broadcast(b), m = V::broadcast(mean), cv = V::broadcast(c);
  std::int64_t i = 0;
  for (; i + W <= n; i += W)
    V::fma(av, V::load(g + i), V::fma(bv, V::load(x + i) - m, cv)).store(gx + i);
  if (i < n) {
    const int r = static_cast<int>(n - i);
    V::fma(av, V::load_partial(g + i, r), V::fma(bv, V::load_partial(x + i, r) - m, cv)).store_partial(gx + i, r);
  }
}

template <class T>
NormKernels<T> make_norm_kernels() {
  return NormKernels<T>{&sum<T>, &sum_sq_dev<T>, &scale_shift<T>, &grad_sums<T>, &grad_apply<T>};
}

}  // namespace PFN_ISA_NS
}  // namespace cpu
}  // namespace pyfastnn
