// Elementwise math on Vec<T>: exp, sigmoid, tanh, gelu, and the fused
// bias + activation applied to one row of an output tile. float is fully
// vectorised; double (used for gradient checks) calls libm for the
// transcendental parts, where accuracy matters more than speed.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

#include "common/activation.h"
#include "cpu/vec/vec.h"

namespace pyfastnn {
namespace cpu {
namespace PFN_ISA_NS {

// exp(x) = 2^n * e^r with n = round(x / ln 2), |r| <= ln2 / 2, and a Taylor
// polynomial for e^r (degree 7 is below float's half-ulp on that interval).
inline Vec<float> vexp(Vec<float> x_in) {
  using V = Vec<float>;
  // min(hi, max(lo, x)) keeps a NaN in x (the second operand wins). The low clamp
  // is ln(FLT_MIN): below it the result is flushed to 0 (and past ln(FLT_MAX) it
  // is inf) at the end, so softmax gives exactly 0 to a -inf logit and sigmoid(-inf) = 0.
  const V x = V::min(V::broadcast(88.0f), V::max(V::broadcast(-87.33654f), x_in));
  const V n = V::round(x * V::broadcast(1.44269504088896341f));
  V r = V::fma(n, V::broadcast(-0.693145751953125f), x);
  r = V::fma(n, V::broadcast(-1.42860682030941723e-6f), r);
  V p = V::broadcast(1.0f / 5040);
  p = V::fma(p, r, V::broadcast(1.0f / 720));
  p = V::fma(p, r, V::broadcast(1.0f / 120));
  p = V::fma(p, r, V::broadcast(1.0f / 24));
  p = V::fma(p, r, V::broadcast(1.0f / 6));
  p = V::fma(p, r, V::broadcast(0.5f));
  p = V::fma(p, r, V::broadcast(1.0f));
  p = V::fma(p, r, V::broadcast(1.0f));
  const V e = V::select_lt(x_in, V::broadcast(-87.33654f), V::zero(), p * V::pow2n(n));
  return V::select_lt(V::broadcast(88.72284f), x_in, V::broadcast(std::numeric_limits<float>::infinity()), e);
}

inline Vec<float> vsigmoid(Vec<float> x) {
  using V = Vec<float>;
  const V one = V::broadcast(1.0f);
  return one / (one + vexp(V::zero() - x));
}

// tanh: an odd Taylor series where 1 - e^{-2|x|} would cancel (|x| < 0.3),
// (1 - e) / (1 + e) with e = e^{-2|x|} elsewhere.
inline Vec<float> vtanh(Vec<float> x) {
  using V = Vec<float>;
  const V a = V::abs(x);
  const V e = vexp(V::broadcast(-2.0f) * a);
  const V one = V::broadcast(1.0f);
  const V big = (one - e) / (one + e);
  const V signed_big = V::select_lt(x, V::zero(), V::zero() - big, big);
  const V x2 = x * x;
  V p = V::broadcast(-1382.0f / 155925);
  p = V::fma(p, x2, V::broadcast(62.0f / 2835));
  p = V::fma(p, x2, V::broadcast(-17.0f / 315));
  p = V::fma(p, x2, V::broadcast(2.0f / 15));
  p = V::fma(p, x2, V::broadcast(-1.0f / 3));
  const V small = V::fma(p * x2, x, x);
  return V::select_lt(a, V::broadcast(0.3f), small, signed_big);
}

// Phi(x), the standard normal CDF, from erfc(|x|/sqrt 2) with the Chebyshev
// fit erfc(z) = t exp(-z^2 + P(t)), t = 2 / (2 + z), whose relative error is
// below 1.2e-7 for all z >= 0 — so the left tail stays accurate too.
inline Vec<float> vphi(Vec<float> x) {
  using V = Vec<float>;
  const V z = V::abs(x) * V::broadcast(0.70710678118654752f);
  const V t = V::broadcast(2.0f) / (V::broadcast(2.0f) + z);
  V p = V::broadcast(0.17087277f);
  p = V::fma(p, t, V::broadcast(-0.82215223f));
  p = V::fma(p, t, V::broadcast(1.48851587f));
  p = V::fma(p, t, V::broadcast(-1.13520398f));
  p = V::fma(p, t, V::broadcast(0.27886807f));
  p = V::fma(p, t, V::broadcast(-0.18628806f));
  p = V::fma(p, t, V::broadcast(0.09678418f));
  p = V::fma(p, t, V::broadcast(0.37409196f));
  p = V::fma(p, t, V::broadcast(1.00002368f));
  p = V::fma(p, t, V::broadcast(-1.26551223f));
  const V half_erfc = V::broadcast(0.5f) * t * vexp(p - z * z);
  return V::select_lt(x, V::zero(), half_erfc, V::broadcast(1.0f) - half_erfc);
}

// gelu(x) = x * Phi(x) (the exact form, PyTorch's default).
inline Vec<float> vgelu(Vec<float> x) { return x * vphi(x); }

// d gelu / dx = Phi(x) + x * phi(x), phi the standard normal density.
inline Vec<float> vgelu_grad(Vec<float> x) {
  using V = Vec<float>;
  const V density = V::broadcast(0.398942280401432678f) * vexp(V::broadcast(-0.5f) * x * x);
  return V::fma(x, density, vphi(x));
}

// sigmoid(z) and sigmoid(-z) = 1 - sigmoid(z), both without cancellation:
// with t = e^{-|z|} <= 1 (never inf), 1 / (1 + t) and t / (1 + t) are the pair.
inline void vsigmoid_pair(Vec<float> z, Vec<float>* s, Vec<float>* one_minus_s) {
  using V = Vec<float>;
  const V t = vexp(V::zero() - V::abs(z));
  const V r = V::broadcast(1.0f) / (V::broadcast(1.0f) + t);
  const V big = r, small = t * r;
  *s = V::select_lt(z, V::zero(), small, big);
  *one_minus_s = V::select_lt(z, V::zero(), big, small);
}

// gelu_tanh(x) = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), torch's
// GELU(approximate='tanh'). 0.5 (1 + tanh u) = sigmoid(2u), computed as such so
// the left tail does not cancel to 0.
constexpr float kGeluTanhBeta = 0.7978845608028654f;  // sqrt(2 / pi)
constexpr float kGeluTanhKappa = 0.044715f;
inline Vec<float> vgelu_tanh(Vec<float> x) {
  using V = Vec<float>;
  const V u = V::broadcast(2.0f * kGeluTanhBeta) * V::fma(V::broadcast(kGeluTanhKappa) * x, x * x, x);
  V s, s_neg;
  vsigmoid_pair(u, &s, &s_neg);
  return x * s;
}

// d/dx = s + x * 2 s (1 - s) * u'(x) with s = sigmoid(2u), u' = sqrt(2/pi) (1 + 3 kappa x^2).
// x is clamped to +-1e4 in the second term only: past that s (1 - s) is exactly
// 0 and the clamp keeps x^3 from overflowing into 0 * inf (NaN still passes).
inline Vec<float> vgelu_tanh_grad(Vec<float> x) {
  using V = Vec<float>;
  const V u = V::broadcast(2.0f * kGeluTanhBeta) * V::fma(V::broadcast(kGeluTanhKappa) * x, x * x, x);
  V s, s_neg;
  vsigmoid_pair(u, &s, &s_neg);
  const V xc = V::min(V::broadcast(1e4f), V::max(V::broadcast(-1e4f), x));
  const V du = V::broadcast(2.0f * kGeluTanhBeta) * V::fma(V::broadcast(3.0f * kGeluTanhKappa) * xc, xc, V::broadcast(1.0f));
  return V::fma(xc * du, s * s_neg, s);
}

// silu(x) = x * sigmoid(x); silu'(x) = s (1 + x (1 - s)), torch's formula.
inline Vec<float> vsilu(Vec<float> x) {
  using V = Vec<float>;
  V s, s_neg;
  vsigmoid_pair(x, &s, &s_neg);
  return x * s;
}

inline Vec<float> vsilu_grad(Vec<float> x) {
  using V = Vec<float>;
  V s, s_neg;
  vsigmoid_pair(x, &s, &s_neg);
  return s * V::fma(x, s_neg, V::broadcast(1.0f));
}

template <class V>
inline V apply_activation(V x, Activation act);

template <>
inline Vec<float> apply_activation(Vec<float> x, Activation act) {
  switch (act) {
    case Activation::relu: return Vec<float>::max(Vec<float>::zero(), x);
    case Activation::gelu: return vgelu(x);
    case Activation::sigmoid: return vsigmoid(x);
    case Activation::tanh: return vtanh(x);
    case Activation::gelu_tanh: return vgelu_tanh(x);
    case Activation::silu: return vsilu(x);
    case Activation::none: break;
  }
  return x;
}

inline double gelu_grad_scalar(double x) {
  return 0.5 * std::erfc(-x * 0.70710678118654752440) + x * 0.39894228040143267794 * std::exp(-0.5 * x * x);
}

// The double twins of vsigmoid_pair, vgelu_tanh(_grad) and vsilu(_grad).
inline void sigmoid_pair_scalar(double z, double* s, double* one_minus_s) {
  const double t = std::exp(-std::fabs(z));
  const double r = 1.0 / (1.0 + t);
  *s = z < 0.0 ? t * r : r;
  *one_minus_s = z < 0.0 ? r : t * r;
}

inline double gelu_tanh_u2(double x) {  // 2u
  return 2.0 * 0.79788456080286535588 * (0.044715 * x * (x * x) + x);
}

inline double gelu_tanh_grad_scalar(double x) {
  double s, s_neg;
  sigmoid_pair_scalar(gelu_tanh_u2(x), &s, &s_neg);
  const double xc = x < -1e4 ? -1e4 : (x > 1e4 ? 1e4 : x);  // keeps NaN
  const double du = 2.0 * 0.79788456080286535588 * (3.0 * 0.044715 * xc * xc + 1.0);
  return xc * du * (s * s_neg) + s;
}

inline double silu_grad_scalar(double x) {
  double s, s_neg;
  sigmoid_pair_scalar(x, &s, &s_neg);
  return s * (x * s_neg + 1.0);
}

inline double activation_scalar(double x, Activation act) {
  switch (act) {
    case Activation::relu: return x > 0.0 || x != x ? x : 0.0;
    case Activation::gelu: return 0.5 * x * std::erfc(-x * 0.70710678118654752440);
    case Activation::sigmoid: return 1.0 / (1.0 + std::exp(-x));
    case Activation::tanh: return std::tanh(x);
    case Activation::gelu_tanh: {
      double s, s_neg;
      sigmoid_pair_scalar(gelu_tanh_u2(x), &s, &s_neg);
      return x * s;
    }
    case Activation::silu: {
      double s, s_neg;
      sigmoid_pair_scalar(x, &s, &s_neg);
      return x * s;
    }
    case Activation::none: break;
  }
  return x;
}

// y[0:n] = act(y[0:n] + bias[0:n]); bias may be null.
inline void bias_activation_row(float* y, const float* bias, std::int64_t n, Activation act) {
  using V = Vec<float>;
  std::int64_t j = 0;
  for (; j + V::size <= n; j += V::size) {
    V v = V::load(y + j);
    if (bias) v = v + V::load(bias + j);
    apply_activation(v, act).store(y + j);
  }
  if (j < n) {
    const int rest = static_cast<int>(n - j);
    V v = V::load_partial(y + j, rest);
    if (bias) v = v + V::load_partial(bias + j, rest);
    apply_activation(v, act).store_partial(y + j, rest);
  }
}

inline void bias_activation_row(double* y, const double* bias, std::int64_t n, Activation act) {
  if (bias)
    for (std::int64_t j = 0; j < n; ++j) y[j] += bias[j];
  if (act != Activation::none)
    for (std::int64_t j = 0; j < n; ++j) y[j] = activation_scalar(y[j], act);
}

// y[0:n] = act(y[0:n] + b) for one scalar b (a per-row bias).
inline void scalar_bias_activation_row(float* y, float b, std::int64_t n, Activation act) {
  using V = Vec<float>;
  const V bv = V::broadcast(b);
  std::int64_t j = 0;
  for (; j + V::size <= n; j += V::size) apply_activation(V::load(y + j) + bv, act).store(y + j);
  if (j < n) {
    const int rest = static_cast<int>(n - j);
    apply_activation(V::load_partial(y + j, rest) + bv, act).store_partial(y + j, rest);
  }
}

inline void scalar_bias_activation_row(double* y, double b, std::int64_t n, Activation act) {
  for (std::int64_t j = 0; j < n; ++j) y[j] = activation_scalar(y[j] + b, act);
}

}  // namespace PFN_ISA_NS
}  // namespace cpu
}  // namespace pyfastnn
