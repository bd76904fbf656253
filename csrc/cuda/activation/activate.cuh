// The epilogue activations on the GPU, shared by bias_act, the GEMMs and the
// elementwise kernels: the same formulas as the CPU kernels, so CUDA and CPU
// results differ only by rounding. relu keeps NaN; gelu is the exact erf form
// written with erfc so its left tail does not cancel to 0; gelu_tanh and silu
// take sigmoid and 1 - sigmoid from e^{-|z|} (no cancellation, never inf).
// Codes as pyfastnn::Activation (common/activation.h):
// 0 none, 1 relu, 2 gelu, 3 sigmoid, 4 tanh, 5 gelu_tanh, 6 silu.
#pragma once

namespace pyfastnn {
namespace cuda {

// *s = sigmoid(z), *s_neg = sigmoid(-z) = 1 - sigmoid(z).
__device__ __forceinline__ void sigmoid_pair(float z, float* s, float* s_neg) {
  const float t = expf(-fabsf(z));
  const float r = 1.f / (1.f + t);
  *s = z < 0.f ? t * r : r;
  *s_neg = z < 0.f ? r : t * r;
}

// 2u for gelu_tanh: 0.5 (1 + tanh u) = sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3).
__device__ __forceinline__ float gelu_tanh_2u(float x) {
  return 2.f * 0.7978845608028654f * __fmaf_rn(0.044715f * x, x * x, x);
}

__device__ __forceinline__ float gelu_tanh_forward(float x) {
  float s, s_neg;
  sigmoid_pair(gelu_tanh_2u(x), &s, &s_neg);
  return x * s;
}

// s + x * 2 s (1 - s) u'(x); x clamped to +-1e4 there (s (1 - s) is 0 past it).
__device__ __forceinline__ float gelu_tanh_grad(float x) {
  float s, s_neg;
  sigmoid_pair(gelu_tanh_2u(x), &s, &s_neg);
  const float xc = x < -1e4f ? -1e4f : (x > 1e4f ? 1e4f : x);
  const float du = 2.f * 0.7978845608028654f * __fmaf_rn(3.f * 0.044715f * xc, xc, 1.f);
  return __fmaf_rn(xc * du, s * s_neg, s);
}

__device__ __forceinline__ float silu_forward(float x) {
  float s, s_neg;
  sigmoid_pair(x, &s, &s_neg);
  return x * s;
}

__device__ __forceinline__ float silu_grad(float x) {
  float s, s_neg;
  sigmoid_pair(x, &s, &s_neg);
  return s * __fmaf_rn(x, s_neg, 1.f);
}

__device__ __forceinline__ float activate(float v, int act) {
  switch (act) {
    case 1: return v > 0.f || v != v ? v : 0.f;
    case 2: return 0.5f * v * erfcf(-v * 0.70710678118654752f);
    case 3: return 1.f / (1.f + expf(-v));
    case 4: return tanhf(v);
    case 5: return gelu_tanh_forward(v);
    case 6: return silu_forward(v);
    default: return v;
  }
}

}  // namespace cuda
}  // namespace pyfastnn
