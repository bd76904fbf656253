// Pooling kernels for the avx512 level: the generic loops, plus 2x2 windows
// with stride 2 (the common CNN pool) done 16 outputs at a time — two input
// rows loaded as 32 columns each, split into even and odd columns with one
// permute per vector, so every input element is loaded exactly once.
#define PFN_ISA_LEVEL 2
#define PFN_ISA_NS avx512
#include <immintrin.h>

#include "cpu/pool/pool_impl.h"

namespace pyfastnn {
namespace cpu {
namespace avx512 {

namespace {

bool is_2x2_stride2(const PoolGeometry& g) {
  return g.KH == 2 && g.KW == 2 && g.SH == 2 && g.SW == 2 && g.PH == 0 && g.PW == 0 && g.H * g.W < (1LL << 31);
}

struct Columns {  // even and odd input columns of one row, 16 outputs' worth
  __m512 even, odd;
};

inline Columns load_columns(const float* row, int outputs) {
  const __m512i even_idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd_idx = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  __m512 lo, hi;
  if (outputs == 16) {
    lo = _mm512_loadu_ps(row);
    hi = _mm512_loadu_ps(row + 16);
  } else {  // only the 2*outputs columns that belong to a window are read
    const int n = 2 * outputs;
    lo = _mm512_maskz_loadu_ps(static_cast<__mmask16>(n >= 16 ? 0xFFFF : (1u << n) - 1), row);
    hi = _mm512_maskz_loadu_ps(static_cast<__mmask16>(n <= 16 ? 0 : (1u << (n - 16)) - 1), row + 16);
  }
  return {_mm512_permutex2var_ps(lo, even_idx, hi), _mm512_permutex2var_ps(lo, odd_idx, hi)};
}

// best/arg take candidate c (at flat index ci) if c > best, or c is the first NaN:
// "not less or equal, or unordered" where best is not NaN (two independent
// compares, so the chain through best is one compare and one blend deep).
inline void take_if_greater(__m512 c, __m512i ci, __m512* best, __m512i* arg) {
  const __mmask16 take = _mm512_cmp_ps_mask(c, *best, _CMP_NLE_UQ) & _mm512_cmp_ps_mask(*best, *best, _CMP_ORD_Q);
  *best = _mm512_mask_blend_ps(take, *best, c);
  *arg = _mm512_mask_blend_epi32(take, *arg, ci);
}

// The larger of (x at xi) and (y at yi), x winning ties and the first NaN
// winning: x must come first in the window. Max with "first wins" is
// associative, so a window can be reduced as a tree in window order.
inline void first_max(__m512 x, __m512i xi, __m512 y, __m512i yi, __m512* best, __m512i* arg) {
  *best = x;
  *arg = xi;
  take_if_greater(y, yi, best, arg);
}

inline void store_max(float* yrow, std::int64_t* irow, std::int64_t ox, int n, __m512 best, __m512i arg) {
  const __m512i lo = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(arg));
  const __m512i hi = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(arg, 1));
  if (n == 16) {
    _mm512_storeu_ps(yrow + ox, best);
    _mm512_storeu_si512(irow + ox, lo);
    _mm512_storeu_si512(irow + ox + 8, hi);
  } else {
    _mm512_mask_storeu_ps(yrow + ox, static_cast<__mmask16>((1u << n) - 1), best);
    _mm512_mask_storeu_epi64(irow + ox, static_cast<__mmask8>(n >= 8 ? 0xFF : (1u << n) - 1), lo);
    _mm512_mask_storeu_epi64(irow + ox + 8, static_cast<__mmask8>(n <= 8 ? 0 : (1u << (n - 8)) - 1), hi);
  }
}

// Width-3 windows at column stride 2 (ResNet's 3x3/2 stem pool, any height,
// row stride and padding): for 16 outputs at 2*ox - PW + {0, 1, 2}, the
// first two columns are the even/odd lanes of one 32-column load and the
// third the even lanes of the load one pair further. Border columns whose
// window leaves the row use the generic loop.
void max_forward_w3s2(const PoolGeometry& g, const float* x, float* y, std::int64_t* idx, std::int64_t p0,
                      std::int64_t p1) {
  std::int64_t lo, hi;
  interior_columns(g, &lo, &hi);
  const __m512i lane2 = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  for (std::int64_t p = p0; p < p1; ++p) {
    const float* xp = x + p * g.H * g.W;
    for (std::int64_t oy = 0; oy < g.OH; ++oy) {
      float* yrow = y + (p * g.OH + oy) * g.OW;
      std::int64_t* irow = idx + (p * g.OH + oy) * g.OW;
      const std::int64_t y0 = std::max<std::int64_t>(0, oy * g.SH - g.PH), y1 = std::min(g.H, oy * g.SH - g.PH + g.KH);
      std::int64_t ox = 0;
      for (; ox < lo; ++ox) max_one(g, xp, oy, ox, yrow + ox, irow + ox);
      for (; ox < hi; ox += 16) {
        const int n = static_cast<int>(std::min<std::int64_t>(16, hi - ox));
        const std::int64_t c0 = 2 * ox - g.PW;  // first column of the first window
        __m512 best = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
        __m512i arg = _mm512_setzero_si512();
        bool first = true;
        for (std::int64_t iy = y0; iy < y1; ++iy) {
          const float* row = xp + iy * g.W + c0;
          const Columns a = load_columns(row, n);       // columns c0 + 2u, c0 + 2u + 1
          const Columns b = load_columns(row + 2, n);   // columns c0 + 2u + 2 (even lanes)
          const __m512i at = _mm512_add_epi32(lane2, _mm512_set1_epi32(static_cast<int>(iy * g.W + c0)));
          if (first) {
            best = a.even;
            arg = at;
            first = false;
          } else {
            take_if_greater(a.even, at, &best, &arg);
          }
          take_if_greater(a.odd, _mm512_add_epi32(at, _mm512_set1_epi32(1)), &best, &arg);
          take_if_greater(b.even, _mm512_add_epi32(at, _mm512_set1_epi32(2)), &best, &arg);
        }
        store_max(yrow, irow, ox, n, best, arg);
      }
      for (ox = hi; ox < g.OW; ++ox) max_one(g, xp, oy, ox, yrow + ox, irow + ox);
    }
  }
}

void max_forward(const PoolGeometry& g, const float* x, float* y, std::int64_t* idx, std::int64_t p0,
                 std::int64_t p1) {
  if (g.KW == 3 && g.SW == 2 && g.H * g.W < (1LL << 31)) return max_forward_w3s2(g, x, y, idx, p0, p1);
  if (!is_2x2_stride2(g)) return max_forward_generic(g, x, y, idx, p0, p1);
  const __m512i lane2 = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i one = _mm512_set1_epi32(1), width = _mm512_set1_epi32(static_cast<int>(g.W));
  for (std::int64_t p = p0; p < p1; ++p) {
    const float* xp = x + p * g.H * g.W;
    for (std::int64_t oy = 0; oy < g.OH; ++oy) {
      const float* r0 = xp + 2 * oy * g.W;
      float* yrow = y + (p * g.OH + oy) * g.OW;
      std::int64_t* irow = idx + (p * g.OH + oy) * g.OW;
      // Below the last row of a plane, a row's tail vector can read into the
      // next input rows and store whole vectors: the lanes past the row land
      // in the next output row, which this loop writes later. Masked loads
      // and stores of 13-wide rows cost about a fifth of the time.
      const bool spill = oy + 1 < g.OH && g.OW >= 8;
      for (std::int64_t ox = 0; ox < g.OW; ox += 16) {
        const int n = spill ? 16 : static_cast<int>(std::min<std::int64_t>(16, g.OW - ox));
        const Columns a = load_columns(r0 + 2 * ox, n), b = load_columns(r0 + g.W + 2 * ox, n);
        const __m512i i00 = _mm512_add_epi32(lane2, _mm512_set1_epi32(static_cast<int>(2 * oy * g.W + 2 * ox)));
        // ((0,0) vs (0,1)) and ((1,0) vs (1,1)) side by side, then the two winners.
        const __m512i i10 = _mm512_add_epi32(i00, width);
        __m512 top, bottom, best;
        __m512i top_at, bottom_at, arg;
        first_max(a.even, i00, a.odd, _mm512_add_epi32(i00, one), &top, &top_at);
        first_max(b.even, i10, b.odd, _mm512_add_epi32(i10, one), &bottom, &bottom_at);
        first_max(top, top_at, bottom, bottom_at, &best, &arg);
        store_max(yrow, irow, ox, n, best, arg);
      }
    }
  }
}

void avg_forward(const PoolGeometry& g, const float* x, float* y, std::int64_t p0, std::int64_t p1) {
  if (!is_2x2_stride2(g)) return avg_forward_generic(g, x, y, p0, p1);
  const __m512 quarter = _mm512_set1_ps(0.25f);
  for (std::int64_t p = p0; p < p1; ++p) {
    const float* xp = x + p * g.H * g.W;
    for (std::int64_t oy = 0; oy < g.OH; ++oy) {
      const float* r0 = xp + 2 * oy * g.W;
      float* yrow = y + (p * g.OH + oy) * g.OW;
      const bool spill = oy + 1 < g.OH && g.OW >= 8;   // as in max_forward
      for (std::int64_t ox = 0; ox < g.OW; ox += 16) {
        const int n = spill ? 16 : static_cast<int>(std::min<std::int64_t>(16, g.OW - ox));
        const Columns a = load_columns(r0 + 2 * ox, n), b = load_columns(r0 + g.W + 2 * ox, n);
        // Same order of additions as the generic loop, so every level agrees bit for bit.
        const __m512 s = _mm512_mul_ps(
            _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a.even, a.odd), b.even), b.odd), quarter);
        if (n == 16) _mm512_storeu_ps(yrow + ox, s);
        else _mm512_mask_storeu_ps(yrow + ox, static_cast<__mmask16>((1u << n) - 1), s);
      }
    }
  }
}

}  // namespace

}  // namespace avx512

void pool_kernels_avx512(PoolKernels<float>* f32, PoolKernels<double>* f64) {
  *f32 = PoolKernels<float>{&avx512::max_forward, &avx512::avg_forward, &avx512::mean_planes<float>};
  *f64 = PoolKernels<double>{&avx512::max_forward_generic<double>, &avx512::avg_forward_generic<double>,
                             &avx512::mean_planes<double>};
}

}  // namespace cpu
}  // namespace pyfastnn
