// A thin SIMD vector type per ISA level: Vec<float>/Vec<double> over
// __m512 (avx512), __m256 (avx2) or one plain element (scalar). Kernels are
// written once against it and compiled once per level.
//
// Include only from a per-ISA translation unit, after defining PFN_ISA_LEVEL
// (0 scalar, 1 avx2, 2 avx512) and PFN_ISA_NS (the namespace for that level,
// so the same templates compiled with different flags never share a symbol).
#pragma once
#if !defined(PFN_ISA_LEVEL) || !defined(PFN_ISA_NS)
#error "define PFN_ISA_LEVEL and PFN_ISA_NS before including vec.h"
#endif

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace pyfastnn {
namespace cpu {
namespace PFN_ISA_NS {

template <class T>
struct Vec;

#if PFN_ISA_LEVEL == 2
// ----------------------------------------------------------------- AVX-512
template <>
struct Vec<float> {
  static constexpr int size = 16;
  __m512 v;
  static Vec zero() { return {_mm512_setzero_ps()}; }
  static Vec broadcast(float x) { return {_mm512_set1_ps(x)}; }
  static Vec load(const float* p) { return {_mm512_loadu_ps(p)}; }
  static Vec load_partial(const float* p, int n) {
    return {_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p)};
  }
  // Lanes [lo, hi) from p[lo..hi), the rest zero; masked-off lanes are never read.
  static constexpr bool has_lane_range = true;
  static Vec load_lanes(const float* p, int lo, int hi) {
    return {_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << hi) - (1u << lo)), p)};
  }
  // The same with the mask made once, outside a hot loop; load_into keeps
  // src's lanes outside the mask (two masked loads assemble one vector).
  using Mask = __mmask16;
  static Mask lanes_mask(int lo, int hi) { return static_cast<__mmask16>((1u << hi) - (1u << lo)); }
  static Vec load_masked(const float* p, Mask m) { return {_mm512_maskz_loadu_ps(m, p)}; }
  static Vec load_into(Vec src, const float* p, Mask m) { return {_mm512_mask_loadu_ps(src.v, m, p)}; }
  void store(float* p) const { _mm512_storeu_ps(p, v); }
  void store_partial(float* p, int n) const {
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), v);
  }
  friend Vec operator+(Vec a, Vec b) { return {_mm512_add_ps(a.v, b.v)}; }
  friend Vec operator-(Vec a, Vec b) { return {_mm512_sub_ps(a.v, b.v)}; }
  friend Vec operator*(Vec a, Vec b) { return {_mm512_mul_ps(a.v, b.v)}; }
  friend Vec operator/(Vec a, Vec b) { return {_mm512_div_ps(a.v, b.v)}; }
  static Vec fma(Vec a, Vec b, Vec c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
  // max(a, b) returns b when either is NaN, so max(zero, x) keeps x's NaN.
  static Vec max(Vec a, Vec b) { return {_mm512_max_ps(a.v, b.v)}; }
  static Vec min(Vec a, Vec b) { return {_mm512_min_ps(a.v, b.v)}; }
  static Vec abs(Vec a) { return {_mm512_abs_ps(a.v)}; }
  static Vec sqrt(Vec a) { return {_mm512_sqrt_ps(a.v)}; }
  static Vec round(Vec a) { return {_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
  static Vec select_lt(Vec a, Vec b, Vec t, Vec f) {
    return {_mm512_mask_blend_ps(_mm512_cmp_ps_mask(a.v, b.v, _CMP_LT_OQ), f.v, t.v)};
  }
  // 2^n for integral-valued n in [-126, 127].
  static Vec pow2n(Vec n) {
    const __m512 shifted = _mm512_add_ps(n.v, _mm512_set1_ps(8388608.0f + 127.0f));
    return {_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(shifted), 23))};
  }
};

template <>
struct Vec<double> {
  static constexpr int size = 8;
  __m512d v;
  static Vec zero() { return {_mm512_setzero_pd()}; }
  static Vec broadcast(double x) { return {_mm512_set1_pd(x)}; }
  static Vec load(const double* p) { return {_mm512_loadu_pd(p)}; }
  static Vec load_partial(const double* p, int n) {
    return {_mm512_maskz_loadu_pd(static_cast<__mmask8>((1u << n) - 1), p)};
  }
  void store(double* p) const { _mm512_storeu_pd(p, v); }
  void store_partial(double* p, int n) const {
    _mm512_mask_storeu_pd(p, static_cast<__mmask8>((1u << n) - 1), v);
  }
  friend Vec operator+(Vec a, Vec b) { return {_mm512_add_pd(a.v, b.v)}; }
  friend Vec operator-(Vec a, Vec b) { return {_mm512_sub_pd(a.v, b.v)}; }
  friend Vec operator*(Vec a, Vec b) { return {_mm512_mul_pd(a.v, b.v)}; }
  friend Vec operator/(Vec a, Vec b) { return {_mm512_div_pd(a.v, b.v)}; }
  static Vec fma(Vec a, Vec b, Vec c) { return {_mm512_fmadd_pd(a.v, b.v, c.v)}; }
  static Vec max(Vec a, Vec b) { return {_mm512_max_pd(a.v, b.v)}; }
  static Vec min(Vec a, Vec b) { return {_mm512_min_pd(a.v, b.v)}; }
  static Vec abs(Vec a) { return {_mm512_abs_pd(a.v)}; }
  static Vec sqrt(Vec a) { return {_mm512_sqrt_pd(a.v)}; }
  static Vec round(Vec a) { return {_mm512_roundscale_pd(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
  static Vec select_lt(Vec a, Vec b, Vec t, Vec f) {
    return {_mm512_mask_blend_pd(_mm512_cmp_pd_mask(a.v, b.v, _CMP_LT_OQ), f.v, t.v)};
  }
  static Vec pow2n(Vec n) {
    const __m512d shifted = _mm512_add_pd(n.v, _mm512_set1_pd(4503599627370496.0 + 1023.0));
    return {_mm512_castsi512_pd(_mm512_slli_epi64(_mm512_castpd_si512(shifted), 52))};
  }
};

#elif PFN_ISA_LEVEL == 1
// -------------------------------------------------------------- AVX2 + FMA
namespace detail {
// Lane mask for the first n of 8 (float) or 4 (double) lanes.
inline __m256i first_lanes_32(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
inline __m256i first_lanes_64(int n) {
  return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
}
}  // namespace detail

template <>
struct Vec<float> {
  static constexpr int size = 8;
  __m256 v;
  static Vec zero() { return {_mm256_setzero_ps()}; }
  static Vec broadcast(float x) { return {_mm256_set1_ps(x)}; }
  static Vec load(const float* p) { return {_mm256_loadu_ps(p)}; }
  static Vec load_partial(const float* p, int n) { return {_mm256_maskload_ps(p, detail::first_lanes_32(n))}; }
  void store(float* p) const { _mm256_storeu_ps(p, v); }
  void store_partial(float* p, int n) const { _mm256_maskstore_ps(p, detail::first_lanes_32(n), v); }
  friend Vec operator+(Vec a, Vec b) { return {_mm256_add_ps(a.v, b.v)}; }
  friend Vec operator-(Vec a, Vec b) { return {_mm256_sub_ps(a.v, b.v)}; }
  friend Vec operator*(Vec a, Vec b) { return {_mm256_mul_ps(a.v, b.v)}; }
  friend Vec operator/(Vec a, Vec b) { return {_mm256_div_ps(a.v, b.v)}; }
  static Vec fma(Vec a, Vec b, Vec c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
  static Vec max(Vec a, Vec b) { return {_mm256_max_ps(a.v, b.v)}; }
  static Vec min(Vec a, Vec b) { return {_mm256_min_ps(a.v, b.v)}; }
  static Vec abs(Vec a) { return {_mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v)}; }
  static Vec sqrt(Vec a) { return {_mm256_sqrt_ps(a.v)}; }
  static Vec round(Vec a) { return {_mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
  static Vec select_lt(Vec a, Vec b, Vec t, Vec f) {
    return {_mm256_blendv_ps(f.v, t.v, _mm256_cmp_ps(a.v, b.v, _CMP_LT_OQ))};
  }
  static Vec pow2n(Vec n) {
    const __m256 shifted = _mm256_add_ps(n.v, _mm256_set1_ps(8388608.0f + 127.0f));
    return {_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(shifted), 23))};
  }
};

template <>
struct Vec<double> {
  static constexpr int size = 4;
  __m256d v;
  static Vec zero() { return {_mm256_setzero_pd()}; }
  static Vec broadcast(double x) { return {_mm256_set1_pd(x)}; }
  static Vec load(const double* p) { return {_mm256_loadu_pd(p)}; }
  static Vec load_partial(const double* p, int n) { return {_mm256_maskload_pd(p, detail::first_lanes_64(n))}; }
  void store(double* p) const { _mm256_storeu_pd(p, v); }
  void store_partial(double* p, int n) const { _mm256_maskstore_pd(p, detail::first_lanes_64(n), v); }
  friend Vec operator+(Vec a, Vec b) { return {_mm256_add_pd(a.v, b.v)}; }
  friend Vec operator-(Vec a, Vec b) { return {_mm256_sub_pd(a.v, b.v)}; }
  friend Vec operator*(Vec a, Vec b) { return {_mm256_mul_pd(a.v, b.v)}; }
  friend Vec operator/(Vec a, Vec b) { return {_mm256_div_pd(a.v, b.v)}; }
  static Vec fma(Vec a, Vec b, Vec c) { return {_mm256_fmadd_pd(a.v, b.v, c.v)}; }
  static Vec max(Vec a, Vec b) { return {_mm256_max_pd(a.v, b.v)}; }
  static Vec min(Vec a, Vec b) { return {_mm256_min_pd(a.v, b.v)}; }
  static Vec abs(Vec a) { return {_mm256_andnot_pd(_mm256_set1_pd(-0.0), a.v)}; }
  static Vec sqrt(Vec a) { return {_mm256_sqrt_pd(a.v)}; }
  static Vec round(Vec a) { return {_mm256_round_pd(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
  static Vec select_lt(Vec a, Vec b, Vec t, Vec f) {
    return {_mm256_blendv_pd(f.v, t.v, _mm256_cmp_pd(a.v, b.v, _CMP_LT_OQ))};
  }
  static Vec pow2n(Vec n) {
    const __m256d shifted = _mm256_add_pd(n.v, _mm256_set1_pd(4503599627370496.0 + 1023.0));
    return {_mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(shifted), 52))};
  }
};

#else
// ------------------------------------------------------------------ scalar
template <class T>
struct Vec {
  static constexpr int size = 1;
  T v;
  static Vec zero() { return {T(0)}; }
  static Vec broadcast(T x) { return {x}; }
  static Vec load(const T* p) { return {*p}; }
  static Vec load_partial(const T* p, int n) { return {n > 0 ? *p : T(0)}; }
  void store(T* p) const { *p = v; }
  void store_partial(T* p, int n) const { if (n > 0) *p = v; }
  friend Vec operator+(Vec a, Vec b) { return {a.v + b.v}; }
  friend Vec operator-(Vec a, Vec b) { return {a.v - b.v}; }
  friend Vec operator*(Vec a, Vec b) { return {a.v * b.v}; }
  friend Vec operator/(Vec a, Vec b) { return {a.v / b.v}; }
  static Vec fma(Vec a, Vec b, Vec c) { return {a.v * b.v + c.v}; }
  // Same NaN rule as the SIMD max/min: the second operand wins unless a > b.
  static Vec max(Vec a, Vec b) { return {a.v > b.v ? a.v : b.v}; }
  static Vec min(Vec a, Vec b) { return {a.v < b.v ? a.v : b.v}; }
  static Vec abs(Vec a) { return {a.v < T(0) ? -a.v : a.v}; }
  static Vec sqrt(Vec a) { return {std::sqrt(a.v)}; }
  static Vec round(Vec a) {
    // Round-half-even through the 1.5*2^p trick; |a| is far below 2^p here.
    const T magic = sizeof(T) == 4 ? T(12582912.0f) : T(6755399441055744.0);
    volatile T t = a.v + magic;
    return {t - magic};
  }
  static Vec select_lt(Vec a, Vec b, Vec t, Vec f) { return {a.v < b.v ? t.v : f.v}; }
  static Vec pow2n(Vec n) {
    // n is a whole number within the exponent range (the callers clamp), or NaN when the
    // input was NaN: casting NaN to an int is undefined, so it takes 0 here (the caller's
    // polynomial is NaN then and carries the NaN through); the shift is done unsigned.
    const T whole = n.v == n.v ? n.v : T(0);
    if (sizeof(T) == 4) {
      const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(whole) + 127) << 23;
      float out;
      std::memcpy(&out, &bits, 4);
      return {static_cast<T>(out)};
    }
    const uint64_t bits = static_cast<uint64_t>(static_cast<int64_t>(whole) + 1023) << 52;
    double out;
    std::memcpy(&out, &bits, 8);
    return {static_cast<T>(out)};
  }
};
#endif

// Whether V has load_lanes (masked loads of a lane range that never touch the
// masked-off addresses): AVX-512 only.
template <class V, class = void>
struct HasLaneRange : std::false_type {};
template <class V>
struct HasLaneRange<V, std::void_t<decltype(V::has_lane_range)>> : std::bool_constant<V::has_lane_range> {};

}  // namespace PFN_ISA_NS
}  // namespace cpu
}  // namespace pyfastnn
