// Templates behind RowwiseKernels; included once per ISA translation unit.
// Every row is independent; reductions use a few vector accumulators in a
// fixed order, so results do not depend on the thread count.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "cpu/rowwise/rowwise.h"
#include "cpu/vec/vec_math.h"

namespace pyfastnn {
namespace cpu {
namespace PFN_ISA_NS {

inline Vec<float> exp_v(Vec<float> x) { return vexp(x); }
inline Vec<double> exp_v(Vec<double> x) {  // double: libm per lane (accuracy over speed)
  alignas(64) double t[Vec<double>::size];
  x.store(t);
  for (double& v : t) v = std::exp(v);
  return Vec<double>::load(t);
}

template <class T>
inline T hsum(Vec<T> v) {
  alignas(64) T t[Vec<T>::size];
  v.store(t);
  T s = 0;
  for (int i = 0; i < Vec<T>::size; ++i) s += t[i];
  return s;
}

// Applies f(vector, lanes) over x[0:n]: full vectors, then one partial one
// (masked lanes read as 0).
template <class T, class F>
inline void for_vectors(std::int64_t n, F&& f) {
  constexpr int W = Vec<T>::size;
  std::int64_t i = 0;
  for (; i + W <= n; i += W) f(i, W);
  if (i < n) f(i, static_cast<int>(n - i));
}

template <class T>
inline Vec<T> load_n(const T* p, int lanes) {
  return lanes == Vec<T>::size ? Vec<T>::load(p) : Vec<T>::load_partial(p, lanes);
}
template <class T>
inline void store_n(Vec<T> v, T* p, int lanes) {
  if (lanes == Vec<T>::size) v.store(p);
  else v.store_partial(p, lanes);
}

template <class T>
T row_max(const T* x, std::int64_t n) {
  using V = Vec<T>;
  T m = -std::numeric_limits<T>::infinity();
  std::int64_t i = 0;
  if (n >= V::size) {
    V acc = V::load(x);
    for (i = V::size; i + V::size <= n; i += V::size) acc = V::max(acc, V::load(x + i));
    alignas(64) T t[V::size];
    acc.store(t);
    for (int l = 0; l < V::size; ++l) m = t[l] > m ? t[l] : m;
  }
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;  // a NaN in the row still reaches the result through exp(x - m)
}

// Sum of f(x[i]) over the row with 4 vector accumulators.
template <class T, class F>
T row_sum(const T* x, std::int64_t n, F&& f) {
  using V = Vec<T>;
  V acc[4] = {V::zero(), V::zero(), V::zero(), V::zero()};
  int u = 0;
  for_vectors<T>(n, [&](std::int64_t i, int lanes) {
    const V v = f(load_n(x + i, lanes), lanes);
    acc[u] = acc[u] + v;
    u = (u + 1) & 3;
  });
  return hsum((acc[0] + acc[1]) + (acc[2] + acc[3]));
}

// Lanes past `lanes` are forced to zero (f may have turned masked zeros into
// something else, e.g. exp(0 - m)).
template <class T>
inline Vec<T> keep_lanes(Vec<T> v, int lanes) {
  if (lanes == Vec<T>::size) return v;
  alignas(64) T t[Vec<T>::size];
  v.store(t);
  for (int l = lanes; l < Vec<T>::size; ++l) t[l] = T(0);
  return Vec<T>::load(t);
}

template <class T>
void softmax(const T* x, T* y, std::int64_t rows, std::int64_t n, bool log) {
  using V = Vec<T>;
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * n;
    T* yr = y + r * n;
    const V m = V::broadcast(row_max(xr, n));
    const T s = row_sum(xr, n, [&](V v, int lanes) { return keep_lanes(exp_v(v - m), lanes); });
    if (log) {
      const V shift = m + V::broadcast(static_cast<T>(std::log(s)));
      for_vectors<T>(n, [&](std::int64_t i, int lanes) { store_n(load_n(xr + i, lanes) - shift, yr + i, lanes); });
    } else {
      const V inv = V::broadcast(T(1) / s);
      for_vectors<T>(n, [&](std::int64_t i, int lanes) {
        store_n(exp_v(load_n(xr + i, lanes) - m) * inv, yr + i, lanes);
      });
    }
  }
}

template <class T>
void softmax_backward(const T* g, const T* y, T* gx, std::int64_t rows, std::int64_t n, bool log) {
  using V = Vec<T>;
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* gr = g + r * n;
    const T* yr = y + r * n;
    T* out = gx + r * n;
    if (log) {
      const V s = V::broadcast(row_sum(gr, n, [](V v, int) { return v; }));
      for_vectors<T>(n, [&](std::int64_t i, int lanes) {
        store_n(load_n(gr + i, lanes) - exp_v(load_n(yr + i, lanes)) * s, out + i, lanes);
      });
    } else {
      V acc = V::zero();
      for_vectors<T>(n, [&](std::int64_t i, int lanes) { acc = V::fma(load_n(gr + i, lanes), load_n(yr + i, lanes), acc); });
      const V s = V::broadcast(hsum(acc));
      for_vectors<T>(n, [&](std::int64_t i, int lanes) {
        store_n(load_n(yr + i, lanes) * (load_n(gr + i, lanes) - s), out + i, lanes);
      });
    }
  }
}

template <class T>
void layer_norm(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, std::int64_t rows, std::int64_t n,
                double eps) {
  using V = Vec<T>;
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * n;
    T* yr = y + r * n;
    const T mu = row_sum(xr, n, [](V v, int) { return v; }) / static_cast<T>(n);
    const V mv = V::broadcast(mu);
    // Two passes: the variance of x - mean does not cancel like E[x^2] - mean^2.
    const T var = row_sum(xr, n, [&](V v, int lanes) {
                    const V d = keep_lanes(v - mv, lanes);
                    return d * d;
                  }) / static_cast<T>(n);
    const T rs = static_cast<T>(1.0 / std::sqrt(static_cast<double>(var) + eps));
    mean[r] = mu;
    rstd[r] = rs;
    const V rv = V::broadcast(rs);
    for_vectors<T>(n, [&](std::int64_t i, int lanes) {
      V v = (load_n(xr + i, lanes) - mv) * rv;
      if (w) v = v * load_n(w + i, lanes);
      if (b) v = v + load_n(b + i, lanes);
      store_n(v, yr + i, lanes);
    });
  }
}

template <class T>
void layer_norm_backward(const T* g, const T* x, const T* mean, const T* rstd, const T* w, T* gx, T* gw, T* gb,
                         std::int64_t rows, std::int64_t n) {
  using V = Vec<T>;
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* gr = g + r * n;
    const T* xr = x + r * n;
    const V mv = V::broadcast(mean[r]), rv = V::broadcast(rstd[r]);
    V acc_g = V::zero(), acc_gx = V::zero();  // sum(w*g), sum(w*g*xhat)
    for_vectors<T>(n, [&](std::int64_t i, int lanes) {
      const V gv = load_n(gr + i, lanes);
      const V xhat = keep_lanes((load_n(xr + i, lanes) - mv) * rv, lanes);
      const V wg = w ? gv * load_n(w + i, lanes) : gv;
      acc_g = acc_g + wg;
      acc_gx = V::fma(wg, xhat, acc_gx);
      if (gw) store_n(V::fma(gv, xhat, load_n(gw + i, lanes)), gw + i, lanes);
      if (gb) store_n(load_n(gb + i, lanes) + gv, gb + i, lanes);
    });
    const T inv_n = T(1) / static_cast<T>(n);
    const V a = V::broadcast(hsum(acc_g) * inv_n), c = V::broadcast(hsum(acc_gx) * inv_n);
    if (!gx) continue;
    T* out = gx + r * n;
    for_vectors<T>(n, [&](std::int64_t i, int lanes) {
      const V gv = load_n(gr + i, lanes);
      const V xhat = (load_n(xr + i, lanes) - mv) * rv;
      const V wg = w ? gv * load_n(w + i, lanes) : gv;
      store_n(rv * (wg - a - xhat * c), out + i, lanes);
    });
  }
}

template <class T>
double cross_entropy(const T* logits, const std::int64_t* target, std::int64_t rows, std::int64_t n,
                     std::int64_t ignore, double smoothing, T* grad, double scale) {
  using V = Vec<T>;
  double total = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* xr = logits + r * n;
    const std::int64_t t = target[r];
    if (t == ignore) {
      if (grad)
        for (std::int64_t i = 0; i < n; ++i) grad[r * n + i] = T(0);
      continue;
    }
    const T mx = row_max(xr, n);
    const V m = V::broadcast(mx);
    const T s = row_sum(xr, n, [&](V v, int lanes) { return keep_lanes(exp_v(v - m), lanes); });
    const double lse = static_cast<double>(mx) + std::log(static_cast<double>(s));
    double loss = (1.0 - smoothing) * (lse - static_cast<double>(xr[t]));
    if (smoothing != 0.0) {
      const double mean_x = static_cast<double>(row_sum(xr, n, [](V v, int) { return v; })) / static_cast<double>(n);
      loss += smoothing * (lse - mean_x);
    }
    total += loss;
    if (grad) {
      T* gr = grad + r * n;
      const V l = V::broadcast(static_cast<T>(lse)), sc = V::broadcast(static_cast<T>(scale));
      const V uniform = V::broadcast(static_cast<T>(scale * smoothing / static_cast<double>(n)));
      for_vectors<T>(n, [&](std::int64_t i, int lanes) {
        store_n(exp_v(load_n(xr + i, lanes) - l) * sc - uniform, gr + i, lanes);
      });
      gr[t] -= static_cast<T>(scale * (1.0 - smoothing));
    }
  }
  return total;
}

template <class T>
void online_softmax(T* S, std::int64_t ld, std::int64_t rows, std::int64_t n, T* m, T* l, T* alpha) {
  using V = Vec<T>;
  const T neg_inf = -std::numeric_limits<T>::infinity();
  for (std::int64_t r = 0; r < rows; ++r) {
    T* sr = S + r * ld;
    const T m_new = std::max(m[r], row_max(sr, n));
    if (m_new == neg_inf) {  // every key so far masked out
      for (std::int64_t j = 0; j < n; ++j) sr[j] = T(0);
      alpha[r] = T(1);
      continue;
    }
    const V mv = V::broadcast(m_new);
    V acc = V::zero();
    for_vectors<T>(n, [&](std::int64_t i, int lanes) {
      const V e = keep_lanes(exp_v(load_n(sr + i, lanes) - mv), lanes);
      store_n(e, sr + i, lanes);
      acc = acc + e;
    });
    alpha[r] = m[r] == neg_inf ? T(0) : static_cast<T>(std::exp(static_cast<double>(m[r] - m_new)));
    l[r] = l[r] * alpha[r] + hsum(acc);
    m[r] = m_new;
  }
}

template <class T>
void exp_minus(T* S, std::int64_t ld, std::int64_t rows, std::int64_t n, const T* lse) {
  using V = Vec<T>;
  for (std::int64_t r = 0; r < rows; ++r) {
    T* sr = S + r * ld;
    if (lse[r] == -std::numeric_limits<T>::infinity()) {
      for (std::int64_t j = 0; j < n; ++j) sr[j] = T(0);
      continue;
    }
    const V lv = V::broadcast(lse[r]);
    for_vectors<T>(n, [&](std::int64_t i, int lanes) { store_n(exp_v(load_n(sr + i, lanes) - lv), sr + i, lanes); });
  }
}

template <class T>
RowwiseKernels<T> make_rowwise_kernels() {
  return RowwiseKernels<T>{&softmax<T>, &softmax_backward<T>, &layer_norm<T>, &layer_norm_backward<T>,
                           &cross_entropy<T>, &online_softmax<T>, &exp_minus<T>};
}

}  // namespace PFN_ISA_NS
}  // namespace cpu
}  // namespace pyfastnn
