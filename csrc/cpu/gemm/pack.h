// Packing: copies a block of A (or B) from any strided layout into the
// contiguous sliver order the microkernel reads, zero-padding partial slivers
// so the microkernel never needs an edge case in k.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "cpu/vec/vec.h"

namespace pyfastnn {
namespace cpu {
namespace PFN_ISA_NS {

// ap[s][k][i] = A[s*MR + i][k]; rows past mc are zero.
template <class T, int MR>
void pack_a(std::int64_t mc, int kc, const T* a, std::ptrdiff_t rs, std::ptrdiff_t cs, T* ap) {
  for (std::int64_t s = 0; s < mc; s += MR, ap += static_cast<std::ptrdiff_t>(MR) * kc) {
    const int rows = mc - s < MR ? static_cast<int>(mc - s) : MR;
    const T* src = a + s * rs;
    if (rows == MR && cs == 1) {
      // Row-major A: MR sequential streams, one element from each per k.
      const T* r[MR];
      for (int i = 0; i < MR; ++i) r[i] = src + i * rs;
      for (int k = 0; k < kc; ++k)
#pragma GCC unroll 32
        for (int i = 0; i < MR; ++i) ap[k * MR + i] = r[i][k];
    } else if (rows == MR && rs == 1) {
      // Column-major A (a transposed view): each k is MR contiguous values.
      for (int k = 0; k < kc; ++k)
#pragma GCC unroll 32
        for (int i = 0; i < MR; ++i) ap[k * MR + i] = src[k * cs + i];
    } else {
      for (int k = 0; k < kc; ++k) {
        for (int i = 0; i < rows; ++i) ap[k * MR + i] = src[i * rs + k * cs];
        for (int i = rows; i < MR; ++i) ap[k * MR + i] = T(0);
      }
    }
  }
}

#if PFN_ISA_LEVEL == 2
// dst[k*ld + j] = src[j*cs + k] for a 16 x 16 block (j, k < 16): sixteen
// row loads, a register transpose, sixteen stores.
inline void transpose16x16(const float* src, std::ptrdiff_t cs, float* dst, std::ptrdiff_t ld) {
  __m512 r[16], t[16];
  for (int j = 0; j < 16; ++j) r[j] = _mm512_loadu_ps(src + j * cs);
  // Interleave pairs, then quads, then 128-bit lanes, then 256-bit halves.
  for (int j = 0; j < 16; j += 2) {
    t[j] = _mm512_unpacklo_ps(r[j], r[j + 1]);
    t[j + 1] = _mm512_unpackhi_ps(r[j], r[j + 1]);
  }
  for (int j = 0; j < 16; j += 4) {
    r[j] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[j]), _mm512_castps_pd(t[j + 2])));
    r[j + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[j]), _mm512_castps_pd(t[j + 2])));
    r[j + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[j + 1]), _mm512_castps_pd(t[j + 3])));
    r[j + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[j + 1]), _mm512_castps_pd(t[j + 3])));
  }
  for (int j = 0; j < 4; ++j) {
    t[j] = _mm512_shuffle_f32x4(r[j], r[j + 4], 0x88);
    t[j + 4] = _mm512_shuffle_f32x4(r[j], r[j + 4], 0xDD);
    t[j + 8] = _mm512_shuffle_f32x4(r[j + 8], r[j + 12], 0x88);
    t[j + 12] = _mm512_shuffle_f32x4(r[j + 8], r[j + 12], 0xDD);
  }
  for (int j = 0; j < 8; ++j) {
    r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
    r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xDD);
  }
  // r[k] now holds column k of the block, j = 0..15 in order.
  for (int k = 0; k < 16; ++k) _mm512_storeu_ps(dst + k * ld, r[k]);
}
#endif

// bp[t][k][j] = B[k][t*NR + j]; columns past nc are zero.
template <class T, int NR>
void pack_b(int kc, std::int64_t nc, const T* b, std::ptrdiff_t rs, std::ptrdiff_t cs, T* bp) {
  for (std::int64_t t = 0; t < nc; t += NR, bp += static_cast<std::ptrdiff_t>(NR) * kc) {
    const int cols = nc - t < NR ? static_cast<int>(nc - t) : NR;
    const T* src = b + t * cs;
    if (cols == NR && cs == 1) {
      for (int k = 0; k < kc; ++k)
#pragma GCC unroll 64
        for (int j = 0; j < NR; ++j) bp[k * NR + j] = src[k * rs + j];
    } else if (cols == NR && rs == 1) {
      // B transposed: NR sequential streams along k.
      int k0 = 0;
#if PFN_ISA_LEVEL == 2
      if constexpr (sizeof(T) == 4 && NR % 16 == 0) {
        for (; k0 + 16 <= kc; k0 += 16)
          for (int j0 = 0; j0 < NR; j0 += 16)
            transpose16x16(reinterpret_cast<const float*>(src) + j0 * cs + k0, cs,
                           reinterpret_cast<float*>(bp) + k0 * NR + j0, NR);
      }
#endif
      for (int k = k0; k < kc; ++k)
#pragma GCC unroll 64
        for (int j = 0; j < NR; ++j) bp[k * NR + j] = src[j * cs + k];
    } else {
      for (int k = 0; k < kc; ++k) {
        for (int j = 0; j < cols; ++j) bp[k * NR + j] = src[k * rs + j * cs];
        for (int j = cols; j < NR; ++j) bp[k * NR + j] = T(0);
      }
    }
  }
}

// See GemmKernelSet::pack_b_conv. The runs of one sliver (one per output row
// it touches) are found once and reused for every k.
template <class T, int NR>
void pack_b_conv(int kc, std::int64_t nc, const T* base, const std::int64_t* row_offset, std::int64_t wp,
                 std::int64_t ow, std::int64_t P, std::int64_t image_stride, std::int64_t c0, T* bp) {
  using V = Vec<T>;
  struct Run { std::int64_t src; int dst, len; };
  Run runs[NR];
  for (std::int64_t t = 0; t < nc; t += NR, bp += static_cast<std::ptrdiff_t>(NR) * kc) {
    const int cols = nc - t < NR ? static_cast<int>(nc - t) : NR;
    int nruns = 0;
    for (int j = 0; j < cols;) {
      const std::int64_t c = c0 + t + j, image = c / P, p = c % P, oy = p / ow, ox = p % ow;
      const int len = static_cast<int>(std::min<std::int64_t>(cols - j, ow - ox));
      runs[nruns++] = Run{image * image_stride + oy * wp + ox, j, len};
      j += len;
    }
    for (int k = 0; k < kc; ++k) {
      const T* src = base + row_offset[k];
      T* dst = bp + k * NR;
      for (int r = 0; r < nruns; ++r) {
        const T* s = src + runs[r].src;
        T* d = dst + runs[r].dst;
        int i = 0;
        for (; i + V::size <= runs[r].len; i += V::size) V::load(s + i).store(d + i);
        if (i < runs[r].len) V::load_partial(s + i, runs[r].len - i).store_partial(d + i, runs[r].len - i);
      }
      for (int j = cols; j < NR; ++j) dst[j] = T(0);
    }
  }
}

}  // namespace PFN_ISA_NS
}  // namespace cpu
}  // namespace pyfastnn
