// Direct convolution for a small unfolded depth K = Cg*KH*KW at stride 1
// (a network's first layer: C = 1..3). There a GEMM spends its time packing
// and writing, not multiplying; this kernel reads the padded image in place
// and writes each output once from a register tile of OB channels x NV
// vectors of output pixels.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "cpu/conv/conv_geometry.h"
#include "cpu/vec/vec.h"

namespace pyfastnn {
namespace cpu {
namespace PFN_ISA_NS {

// One tile: OB output channels x RB output rows x NV vectors of pixels; each
// weight broadcast feeds RB*NV FMAs.
template <class T, int OB, int RB>
inline void direct_tile(const ConvGeometry& g, std::int64_t Wp, const T* xrow, const std::int64_t* row_offset,
                        const T* w, const T* bias, T* y, std::int64_t o0, std::int64_t oy, std::int64_t ox) {
  using V = Vec<T>;
  constexpr int W = V::size, NV = 2;
  const std::int64_t K = g.k_rows();
  V acc[OB][RB][NV];
#pragma GCC unroll 8
  for (int o = 0; o < OB; ++o) {
    const V b = V::broadcast(bias ? bias[o0 + o] : T(0));
    for (int r = 0; r < RB; ++r)
      for (int j = 0; j < NV; ++j) acc[o][r][j] = b;
  }
  for (std::int64_t k = 0; k < K; ++k) {
    V xv[RB][NV];
    for (int r = 0; r < RB; ++r)
      for (int j = 0; j < NV; ++j) xv[r][j] = V::load(xrow + r * Wp + row_offset[k] + ox + j * W);
#pragma GCC unroll 8
    for (int o = 0; o < OB; ++o) {
      const V wv = V::broadcast(w[(o0 + o) * K + k]);
      for (int r = 0; r < RB; ++r)
        for (int j = 0; j < NV; ++j) acc[o][r][j] = V::fma(wv, xv[r][j], acc[o][r][j]);
    }
  }
  const std::int64_t left = g.OW - ox;
  for (int o = 0; o < OB; ++o)
    for (int r = 0; r < RB; ++r) {
      T* dst = y + ((o0 + o) * g.OH + oy + r) * g.OW + ox;
      for (int j = 0; j < NV; ++j) {
        const std::int64_t n = left - j * W;
        if (n >= W) acc[o][r][j].store(dst + j * W);
        else if (n > 0) acc[o][r][j].store_partial(dst + j * W, static_cast<int>(n));
      }
    }
}

// The same product over the output plane taken as one flat row of OH*OW
// pixels (needs OW >= W and masked lane-range loads): a vector of 16 output
// pixels crosses at most one row end, so its input is two masked loads from
// two rows of xpad, and every tile is full however OW divides by the vector
// width (26-wide rows left a fifth of the lanes idle in the row tiles above).
// Same additions in the same order as direct_tile: results agree bit for bit.
template <class T, int NV>
struct FlatSpan {       // NV vectors of output pixels from flat position p0
  std::int64_t p0;
  std::int64_t at[NV];  // lanes in this_row read xpad + at + l, lanes in next_row xpad + at + (Wp - OW) + l
  int valid[NV];        // lanes inside the plane
  typename Vec<T>::Mask this_row[NV], next_row[NV];
};

template <class T, int NV>
FlatSpan<T, NV> flat_span(const ConvGeometry& g, std::int64_t Wp, std::int64_t p0) {
  constexpr int W = Vec<T>::size;
  const std::int64_t P = g.OH * g.OW;
  FlatSpan<T, NV> span;
  span.p0 = p0;
  std::int64_t vy = p0 / g.OW, vx = p0 - vy * g.OW;
  for (int j = 0; j < NV; ++j) {
    const std::int64_t p = p0 + j * W;
    span.valid[j] = static_cast<int>(std::max<std::int64_t>(0, std::min<std::int64_t>(W, P - p)));
    const int split = static_cast<int>(std::min<std::int64_t>(span.valid[j], g.OW - vx));  // lanes in row vy
    span.at[j] = vy * Wp + vx;
    span.this_row[j] = Vec<T>::lanes_mask(0, split);
    span.next_row[j] = Vec<T>::lanes_mask(split, span.valid[j]);
    vx += W;
    if (vx >= g.OW) vx -= g.OW, ++vy;   // OW >= W: at most one row end per vector
  }
  return span;
}

// KK: the unfolded depth when known at compile time (a 3x3 single-channel
// kernel: 9, fully unrolled), 0 for any K. FULL: every vector of the span
// lies inside the plane, so the stores need no lane counts (and no branches).
// Not inlined: inside the image and span loops GCC spills the accumulators.
template <class T, int OB, int NV, int KK, bool FULL>
__attribute__((noinline)) void direct_flat_tile(const ConvGeometry& g, std::int64_t Wp, const T* xpad, const FlatSpan<T, NV>& span,
                             const std::int64_t* row_offset, const T* w, const T* bias, T* y, std::int64_t o0) {
  using V = Vec<T>;
  constexpr int W = V::size;
  const std::int64_t K = KK ? KK : g.k_rows(), P = g.OH * g.OW;
  const std::int64_t next_row = Wp - g.OW;
  V acc[OB][NV];
#pragma GCC unroll 8
  for (int o = 0; o < OB; ++o) {
    const V b = V::broadcast(bias ? bias[o0 + o] : T(0));
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[o][j] = b;
  }
  const T* wo = w + o0 * K;
#pragma GCC unroll 9
  for (std::int64_t k = 0; k < K; ++k) {
    V xv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
      // Branch-free: two masked loads (the second one's mask is often empty).
      const T* at = xpad + span.at[j] + row_offset[k];
      xv[j] = V::load_into(V::load_masked(at, span.this_row[j]), at + next_row, span.next_row[j]);
    }
#pragma GCC unroll 8
    for (int o = 0; o < OB; ++o) {
      const V wv = V::broadcast(wo[o * K + k]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[o][j] = V::fma(wv, xv[j], acc[o][j]);
    }
  }
  T* dst = y + o0 * P + span.p0;
#pragma GCC unroll 8
  for (int o = 0; o < OB; ++o, dst += P) {
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
      if (FULL) {
        acc[o][j].store(dst + j * W);
      } else {
        const int valid = span.valid[j];
        if (valid == W) acc[o][j].store(dst + j * W);
        else if (valid > 0) acc[o][j].store_partial(dst + j * W, valid);
      }
    }
  }
}

// One block of OB output channels over the whole plane: the spans, then the
// tail. Channel blocks outside spans: OB planes are written at a time, not
// all Og (4-15% faster on 26x26 planes, where one image's 32 planes do not
// fit in L1).
template <class T, int OB, int FV, int KK>
void direct_flat_block(const ConvGeometry& g, std::int64_t Wp, const T* xpad, const std::vector<FlatSpan<T, FV>>& spans,
                       const FlatSpan<T, 1>& tail1, const FlatSpan<T, 2>& tail2, const FlatSpan<T, FV>& tailv,
                       int tail, bool shifted, const std::int64_t* row_offset, const T* w, const T* bias, T* y,
                       std::int64_t o0) {
  for (const FlatSpan<T, FV>& span : spans) direct_flat_tile<T, OB, FV, KK, true>(g, Wp, xpad, span, row_offset, w, bias, y, o0);
  if (tail == 0) return;
  if (!shifted) direct_flat_tile<T, OB, FV, KK, false>(g, Wp, xpad, tailv, row_offset, w, bias, y, o0);
  else if (tail == 1) direct_flat_tile<T, OB, 1, KK, true>(g, Wp, xpad, tail1, row_offset, w, bias, y, o0);
  else if (tail == 2) direct_flat_tile<T, OB, 2, KK, true>(g, Wp, xpad, tail2, row_offset, w, bias, y, o0);
  else direct_flat_tile<T, OB, FV, KK, true>(g, Wp, xpad, tailv, row_offset, w, bias, y, o0);
}

// The plane as spans of FV whole vectors, then its last 1..FV vectors moved
// back to end at P: the pixels they repeat are computed again with the same
// additions (the same values), so no store needs a lane count; 26x26 planes
// take 14 spans of 3 and one of 1, not 15 of 3. The spans depend only on the
// geometry: made once for all the images of a call.
template <class T, int FB, int FV>
void conv_direct_flat(const ConvGeometry& g, std::int64_t Wp, const T* xpad, std::int64_t x_stride,
                      std::int64_t images, const std::int64_t* row_offset, const T* w, const T* bias, T* y,
                      std::int64_t y_stride) {
  constexpr int W = Vec<T>::size;
  const std::int64_t P = g.OH * g.OW, Og = g.o_per_group();
  std::vector<FlatSpan<T, FV>> spans;
  spans.reserve(static_cast<std::size_t>(P / (FV * W)));
  std::int64_t p0 = 0;
  for (; p0 + FV * W <= P; p0 += FV * W) spans.push_back(flat_span<T, FV>(g, Wp, p0));
  const int tail = static_cast<int>((P - p0 + W - 1) / W);
  const bool shifted = P >= tail * W;   // else a plane smaller than the tail: lane counts
  const std::int64_t tail_p0 = shifted ? P - tail * W : p0;
  const FlatSpan<T, 1> tail1 = flat_span<T, 1>(g, Wp, tail_p0);
  const FlatSpan<T, 2> tail2 = flat_span<T, 2>(g, Wp, tail_p0);
  const FlatSpan<T, FV> tailv = flat_span<T, FV>(g, Wp, tail_p0);
  const bool k9 = g.k_rows() == 9;
  for (std::int64_t n = 0; n < images; ++n, xpad += x_stride, y += y_stride) {
    std::int64_t o0 = 0;
    for (; o0 + FB <= Og; o0 += FB) {
      if (k9) direct_flat_block<T, FB, FV, 9>(g, Wp, xpad, spans, tail1, tail2, tailv, tail, shifted, row_offset, w, bias, y, o0);
      else direct_flat_block<T, FB, FV, 0>(g, Wp, xpad, spans, tail1, tail2, tailv, tail, shifted, row_offset, w, bias, y, o0);
    }
    for (; o0 < Og; ++o0)
      direct_flat_block<T, 1, FV, 0>(g, Wp, xpad, spans, tail1, tail2, tailv, tail, shifted, row_offset, w, bias, y, o0);
  }
}

// y_g (Og x OH x OW) = w_g (Og x K) * unfold(xpad) + bias, for `images`
// images of one group, x_stride and y_stride apart. xpad: Cg planes of
// (OH + (KH-1)*DH) x Wp, row_offset[k] as in PaddedLayout; the row tiles read
// up to (KW-1)*DW + 2*W elements past its end, the flat-run tiles (OW >= W
// with lane-range loads) nothing outside it.
template <class T>
void conv_direct_small_k(const ConvGeometry& g, std::int64_t Wp, const T* xpad, std::int64_t x_stride,
                         std::int64_t images, const std::int64_t* row_offset, const T* w, const T* bias, T* y,
                         std::int64_t y_stride) {
  constexpr int W = Vec<T>::size, NV = 2, OB = 4;
  if constexpr (HasLaneRange<Vec<T>>::value) {
    if (g.OW >= W) {
      constexpr int FB = 8, FV = 3;   // 24 accumulators (FB=6 x FV=4 and others spill or run slower)
      conv_direct_flat<T, FB, FV>(g, Wp, xpad, x_stride, images, row_offset, w, bias, y, y_stride);
      return;
    }
  }
  const std::int64_t Og = g.o_per_group();
  for (std::int64_t n = 0; n < images; ++n, xpad += x_stride, y += y_stride)
    for (std::int64_t o0 = 0; o0 < Og; o0 += OB) {
      const bool full = Og - o0 >= OB;
      for (std::int64_t oy = 0; oy < g.OH; oy += 2) {
        const bool two = g.OH - oy >= 2;
        const T* xrow = xpad + oy * Wp;
        for (std::int64_t ox = 0; ox < g.OW; ox += NV * W) {
          if (full && two) {
            direct_tile<T, OB, 2>(g, Wp, xrow, row_offset, w, bias, y, o0, oy, ox);
          } else {  // channel or row remainder: one channel, one row at a time
            for (std::int64_t o = o0; o < std::min(Og, o0 + OB); ++o)
              for (std::int64_t r = oy; r < std::min(g.OH, oy + 2); ++r)
                direct_tile<T, 1, 1>(g, Wp, xpad + r * Wp, row_offset, w, bias, y, o, r, ox);
          }
        }
      }
    }
}

// acc[o][k] += gy_o * x(shifted by tap k), for one vector of output pixels.
template <class T, int OB, int KB>
__attribute__((always_inline)) inline void weight_grad_step(Vec<T> (&acc)[OB][KB], const Vec<T> (&gv)[OB],
                                                           const T* const (&xk)[KB], std::int64_t at) {
#pragma GCC unroll 16
  for (int k = 0; k < KB; ++k) {
    const Vec<T> xv = Vec<T>::load(xk[k] + at);
#pragma GCC unroll 4
    for (int o = 0; o < OB; ++o) acc[o][k] = Vec<T>::fma(gv[o], xv, acc[o][k]);
  }
}

// One (OB channels x KB taps) block of the weight gradient over a whole
// image. KB is a compile-time constant and every index is hoisted so the
// OB*KB accumulators stay in registers (with a runtime tap count and
// geometry read through the struct, GCC kept them on the stack: 5x slower).
template <class T, int OB, int KB>
inline void weight_grad_block(const ConvGeometry& g, std::int64_t Wp, const T* xpad, const std::int64_t* offsets,
                              const T* gy, int ob, std::int64_t o0, std::int64_t k0, std::int64_t K, T* gw) {
  using V = Vec<T>;
  constexpr int W = V::size;
  const std::int64_t OH = g.OH, OW = g.OW;
  const int tail = static_cast<int>(OW % W);
  const std::int64_t full = OW - tail;
  V acc[OB][KB];
#pragma GCC unroll 4
  for (int o = 0; o < OB; ++o)
#pragma GCC unroll 16
    for (int k = 0; k < KB; ++k) acc[o][k] = V::zero();
  const T* plane[OB];
#pragma GCC unroll 4
  for (int o = 0; o < OB; ++o) plane[o] = gy + (o0 + (o < ob ? o : 0)) * OH * OW;   // a missing channel repeats
  for (std::int64_t oy = 0; oy < OH; ++oy) {
    const T* xk[KB];
#pragma GCC unroll 16
    for (int k = 0; k < KB; ++k) xk[k] = xpad + offsets[k] + oy * Wp;
    const std::int64_t row = oy * OW;
    for (std::int64_t ox = 0; ox < full; ox += W) {
      V gv[OB];
#pragma GCC unroll 4
      for (int o = 0; o < OB; ++o) gv[o] = V::load(plane[o] + row + ox);
      weight_grad_step<T, OB, KB>(acc, gv, xk, ox);
    }
    if (tail) {
      // Lanes past the row are zero, so whatever x holds there adds nothing.
      V gv[OB];
#pragma GCC unroll 4
      for (int o = 0; o < OB; ++o) gv[o] = V::load_partial(plane[o] + row + full, tail);
      weight_grad_step<T, OB, KB>(acc, gv, xk, full);
    }
  }
  for (int o = 0; o < ob; ++o)
    for (int k = 0; k < KB; ++k) {
      alignas(64) T lanes[W];
      acc[o][k].store(lanes);
      T sum = 0;
      for (int l = 0; l < W; ++l) sum += lanes[l];
      gw[(o0 + o) * K + k0 + k] += sum;
    }
}

// gw_g (Og x K) += sum over output pixels of gy_g[o][p] * unfold(xpad)[k][p],
// for one image and group, small K: each (o, k) is a dot product of a
// grad_y plane with a shifted input plane, accumulated in vector lanes
// (OB channels x up to KB taps at a time) and reduced once per image.
template <class T>
void conv_direct_small_k_weight_grad(const ConvGeometry& g, std::int64_t Wp, const T* xpad,
                                     const std::int64_t* row_offset, const T* gy, T* gw) {
  constexpr int OB = 2, KB = 9;   // 18 accumulators: a 3x3 single-channel kernel in one pass over grad_y
  const std::int64_t K = g.k_rows(), Og = g.o_per_group();
  for (std::int64_t o0 = 0; o0 < Og; o0 += OB) {
    const int ob = static_cast<int>(std::min<std::int64_t>(OB, Og - o0));
    for (std::int64_t k0 = 0; k0 < K; k0 += KB) {
      const std::int64_t* offs = row_offset + k0;
      switch (std::min<std::int64_t>(KB, K - k0)) {
#define PFN_WGRAD_CASE(kb) \
  case kb:                 \
    weight_grad_block<T, OB, kb>(g, Wp, xpad, offs, gy, ob, o0, k0, K, gw); \
    break;
        PFN_WGRAD_CASE(9) PFN_WGRAD_CASE(8) PFN_WGRAD_CASE(7) PFN_WGRAD_CASE(6) PFN_WGRAD_CASE(5)
        PFN_WGRAD_CASE(4) PFN_WGRAD_CASE(3) PFN_WGRAD_CASE(2) PFN_WGRAD_CASE(1)
#undef PFN_WGRAD_CASE
        default:
          break;
      }
    }
  }
}

}  // namespace PFN_ISA_NS
}  // namespace cpu
}  // namespace pyfastnn
