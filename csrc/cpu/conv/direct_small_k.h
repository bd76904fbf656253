// Direct convolution for a small unfolded depth K = Cg*KH*KW at stride 1
// (a network's first layer: C = 1..3). There a GEMM spends its time packing
// and writing, not multiplying; this kernel reads the padded image in place
// and writes each output once from a register tile of OB channels x NV
// vectors of output pixels.
#pragma once
#include <algorithm>
#include <cstdint>

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

// y_g (Og x OH x OW) = w_g (Og x K) * unfold(xpad) + bias, for one image and
// group. xpad: Cg planes of (OH + (KH-1)*DH) x Wp, row_offset[k] as in
// PaddedLayout, readable up to (KW-1)*DW + 2*W elements past its end.
template <class T>
void conv_direct_small_k(const ConvGeometry& g, std::int64_t Wp, const T* xpad, const std::int64_t* row_offset,
                         const T* w, const T* bias, T* y) {
  constexpr int W = Vec<T>::size, NV = 2, OB = 4;
  const std::int64_t Og = g.o_per_group();
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

// gw_g (Og x K) += sum over output pixels of gy_g[o][p] * unfold(xpad)[k][p],
// for one image and group, small K: each (o, k) is a dot product of a
// grad_y plane with a shifted input plane, accumulated in vector lanes
// (OB channels x KB taps at a time) and reduced once per image.
template <class T>
void conv_direct_small_k_weight_grad(const ConvGeometry& g, std::int64_t Wp, const T* xpad,
                                     const std::int64_t* row_offset, const T* gy, T* gw) {
  using V = Vec<T>;
  constexpr int W = V::size, OB = 2, KB = 8;
  const std::int64_t K = g.k_rows(), Og = g.o_per_group();
  for (std::int64_t o0 = 0; o0 < Og; o0 += OB) {
    const int ob = static_cast<int>(std::min<std::int64_t>(OB, Og - o0));
    for (std::int64_t k0 = 0; k0 < K; k0 += KB) {
      const int kb = static_cast<int>(std::min<std::int64_t>(KB, K - k0));
      V acc[OB][KB];
      for (int o = 0; o < OB; ++o)
        for (int k = 0; k < KB; ++k) acc[o][k] = V::zero();
      for (std::int64_t oy = 0; oy < g.OH; ++oy) {
        for (std::int64_t ox = 0; ox < g.OW; ox += W) {
          const int n = static_cast<int>(std::min<std::int64_t>(W, g.OW - ox));
          V gv[OB];
          for (int o = 0; o < OB; ++o) {
            const T* src = gy + ((o0 + (o < ob ? o : 0)) * g.OH + oy) * g.OW + ox;
            // Lanes past the row are zero, so whatever x holds there adds nothing.
            gv[o] = o < ob ? (n == W ? V::load(src) : V::load_partial(src, n)) : V::zero();
          }
          const T* xrow = xpad + oy * Wp + ox;
#pragma GCC unroll 8
          for (int k = 0; k < KB; ++k) {
            if (k >= kb) break;
            const V xv = V::load(xrow + row_offset[k0 + k]);
            for (int o = 0; o < OB; ++o) acc[o][k] = V::fma(gv[o], xv, acc[o][k]);
          }
        }
      }
      for (int o = 0; o < ob; ++o)
        for (int k = 0; k < kb; ++k) {
          alignas(64) T lanes[W];
          acc[o][k].store(lanes);
          T sum = 0;
          for (int l = 0; l < W; ++l) sum += lanes[l];
          gw[(o0 + o) * K + k0 + k] += sum;
        }
    }
  }
}

}  // namespace PFN_ISA_NS
}  // namespace cpu
}  // namespace pyfastnn
