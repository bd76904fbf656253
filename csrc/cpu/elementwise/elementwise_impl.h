// Templates behind ElementwiseKernels; included once per ISA translation unit.
#pragma once
#include "cpu/elementwise/elementwise.h"
#include "cpu/vec/vec_math.h"

namespace pyfastnn {
namespace cpu {
namespace PFN_ISA_NS {

template <class T>
void bias_activation_rows(T* y, const T* bias, std::int64_t rows, std::int64_t cols, Activation act) {
  for (std::int64_t r = 0; r < rows; ++r)
    bias_activation_row(y + r * cols, bias, cols, act);
}

template <class T>
T sum(const T* x, std::int64_t n) {
  using V = Vec<T>;
  constexpr int W = V::size;
  V acc[4] = {V::zero(), V::zero(), V::zero(), V::zero()};
  std::int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W)
    for (int u = 0; u < 4; ++u) acc[u] = acc[u] + V::load(x + i + u * W);
  for (; i + W <= n; i += W) acc[0] = acc[0] + V::load(x + i);
  if (i < n) acc[1] = acc[1] + V::load_partial(x + i, static_cast<int>(n - i));
  alignas(64) T lanes[W];
  ((acc[0] + acc[1]) + (acc[2] + acc[3])).store(lanes);
  T total = 0;
  for (int j = 0; j < W; ++j) total += lanes[j];
  return total;
}

template <class T>
void activation(const T* x, T* y, std::int64_t n, Activation act) {
  using V = Vec<T>;
  if constexpr (sizeof(T) == 4) {
    std::int64_t i = 0;
    for (; i + V::size <= n; i += V::size) apply_activation(V::load(x + i), act).store(y + i);
    if (i < n) apply_activation(V::load_partial(x + i, static_cast<int>(n - i)), act).store_partial(y + i, static_cast<int>(n - i));
  } else {
    for (std::int64_t i = 0; i < n; ++i) y[i] = activation_scalar(x[i], act);
  }
}

// One vector of act'(.) * g; float only (double goes through the scalar loop).
inline Vec<float> activation_grad(Vec<float> g, Vec<float> s, Activation act) {
  using V = Vec<float>;
  const V one = V::broadcast(1.0f);
  switch (act) {
    case Activation::relu: return V::select_lt(V::zero(), s, g, V::zero());
    case Activation::gelu: return g * vgelu_grad(s);
    case Activation::sigmoid: return g * s * (one - s);
    // (1 - y)(1 + y) rather than 1 - y^2: near |y| = 1 the first factor is
    // exact, where 1 - y*y would cancel the rounding of y*y.
    case Activation::tanh: return g * (one - s) * (one + s);
    case Activation::gelu_tanh: return g * vgelu_tanh_grad(s);
    case Activation::silu: return g * vsilu_grad(s);
    case Activation::none: break;
  }
  return g;
}

inline double activation_grad_scalar(double g, double s, Activation act) {
  switch (act) {
    case Activation::relu: return s > 0.0 ? g : 0.0;
    case Activation::gelu: return g * gelu_grad_scalar(s);
    case Activation::sigmoid: return g * s * (1.0 - s);
    case Activation::tanh: return g * (1.0 - s) * (1.0 + s);
    case Activation::gelu_tanh: return g * gelu_tanh_grad_scalar(s);
    case Activation::silu: return g * silu_grad_scalar(s);
    case Activation::none: break;
  }
  return g;
}

template <class T>
void activation_backward(const T* g, const T* saved, T* gx, std::int64_t n, Activation act) {
  using V = Vec<T>;
  if constexpr (sizeof(T) == 4) {
    std::int64_t i = 0;
    for (; i + V::size <= n; i += V::size) activation_grad(V::load(g + i), V::load(saved + i), act).store(gx + i);
    if (i < n) {
      const int r = static_cast<int>(n - i);
      activation_grad(V::load_partial(g + i, r), V::load_partial(saved + i, r), act).store_partial(gx + i, r);
    }
  } else {
    for (std::int64_t i = 0; i < n; ++i) gx[i] = activation_grad_scalar(g[i], saved[i], act);
  }
}

// y += x; reference: for (i < n) y[i] += x[i].
template <class T>
void add(T* y, const T* x, std::int64_t n) {
  using V = Vec<T>;
  constexpr int W = V::size;
  std::int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    (V::load(y + i) + V::load(x + i)).store(y + i);
    (V::load(y + i + W) + V::load(x + i + W)).store(y + i + W);
  }
  for (; i + W <= n; i += W) (V::load(y + i) + V::load(x + i)).store(y + i);
  if (i < n) {
    const int r = static_cast<int>(n - i);
    (V::load_partial(y + i, r) + V::load_partial(x + i, r)).store_partial(y + i, r);
  }
}

template <class T>
ElementwiseKernels<T> make_elementwise_kernels() {
  return ElementwiseKernels<T>{&bias_activation_rows<T>, &sum<T>, &activation<T>, &activation_backward<T>, &add<T>};
}

}  // namespace PFN_ISA_NS
}  // namespace cpu
}  // namespace pyfastnn
