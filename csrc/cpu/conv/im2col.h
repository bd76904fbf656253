// The unfolded input ("im2col") of one image and group, read or written a
// row segment at a time without ever building the whole matrix:
//   Xcol[k][p] = x[c][oy*SH - PH + ky*DH][ox*SW - PW + kx*DW]  (0 outside),
//   k = (c*KH + ky)*KW + kx,  p = oy*OW + ox.
// Segments follow output rows, so with stride 1 every piece is a plain copy.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "cpu/conv/conv_geometry.h"

namespace pyfastnn {
namespace cpu {

// Where row k of Xcol reads from: the channel plane and the input offsets.
struct Im2colRow {
  std::int64_t c, iy0, ix0;            // iy = oy*SH + iy0, ix = ox*SW + ix0
  std::int64_t ox_lo, ox_hi;           // ox in [ox_lo, ox_hi) reads inside the row
};

inline std::int64_t ceil_div_floor0(std::int64_t a, std::int64_t b) {  // ceil(a / b) for b > 0, clamped at 0
  return a <= 0 ? 0 : (a + b - 1) / b;
}

inline Im2colRow im2col_row(const ConvGeometry& g, std::int64_t k) {
  Im2colRow r;
  const std::int64_t kx = k % g.KW, ky = (k / g.KW) % g.KH;
  r.c = k / (g.KW * g.KH);
  r.iy0 = ky * g.DH - g.PH;
  r.ix0 = kx * g.DW - g.PW;
  // ix >= 0  <=>  ox >= ceil(-ix0 / SW);  ix < W  <=>  ox < ceil((W - ix0) / SW)
  r.ox_lo = std::min(g.OW, ceil_div_floor0(-r.ix0, g.SW));
  r.ox_hi = std::max(r.ox_lo, std::min(g.OW, ceil_div_floor0(g.W - r.ix0, g.SW)));
  return r;
}

// dst[0:len] = Xcol[k][p0 : p0+len] for the image/group whose channel 0 is x.
template <class T>
void im2col_segment(const ConvGeometry& g, const T* x, const Im2colRow& r, std::int64_t p0, std::int64_t len,
                    T* dst) {
  std::int64_t oy = p0 / g.OW, ox = p0 % g.OW;
  const T* plane = x + r.c * g.in_plane();
  while (len > 0) {
    const std::int64_t run = std::min(len, g.OW - ox);  // to the end of this output row
    const std::int64_t iy = oy * g.SH + r.iy0;
    if (iy < 0 || iy >= g.H) {
      std::fill(dst, dst + run, T(0));
    } else {
      const T* row = plane + iy * g.W;
      const std::int64_t a = std::clamp(r.ox_lo, ox, ox + run), b = std::clamp(r.ox_hi, a, ox + run);
      std::fill(dst, dst + (a - ox), T(0));
      if (g.SW == 1) {
        std::memcpy(dst + (a - ox), row + a + r.ix0, sizeof(T) * static_cast<std::size_t>(b - a));
      } else {
        for (std::int64_t o = a; o < b; ++o) dst[o - ox] = row[o * g.SW + r.ix0];
      }
      std::fill(dst + (b - ox), dst + run, T(0));
    }
    dst += run;
    len -= run;
    ox = 0;
    ++oy;
  }
}

// x[...] += src[0:len], the adjoint of im2col_segment (col2im, accumulating).
template <class T>
void col2im_segment_add(const ConvGeometry& g, T* x, const Im2colRow& r, std::int64_t p0, std::int64_t len,
                        const T* src) {
  std::int64_t oy = p0 / g.OW, ox = p0 % g.OW;
  T* plane = x + r.c * g.in_plane();
  while (len > 0) {
    const std::int64_t run = std::min(len, g.OW - ox);
    const std::int64_t iy = oy * g.SH + r.iy0;
    if (iy >= 0 && iy < g.H) {
      T* row = plane + iy * g.W;
      const std::int64_t a = std::clamp(r.ox_lo, ox, ox + run), b = std::clamp(r.ox_hi, a, ox + run);
      if (g.SW == 1) {
        T* d = row + a + r.ix0;
        const T* s = src + (a - ox);
        for (std::int64_t i = 0; i < b - a; ++i) d[i] += s[i];
      } else {
        for (std::int64_t o = a; o < b; ++o) row[o * g.SW + r.ix0] += src[o - ox];
      }
    }
    src += run;
    len -= run;
    ox = 0;
    ++oy;
  }
}

// Packs Xcol[k0:k0+kc, n0:n0+nc] into GEMM B slivers of nr columns
// (bp[t][kk][j] = Xcol[k0+kk][n0 + t*nr + j], zero-padded).
template <class T>
void pack_im2col_slivers(const ConvGeometry& g, const T* x, int kc, std::int64_t nc, std::int64_t k0,
                         std::int64_t n0, int nr, T* bp) {
  const std::int64_t slivers = (nc + nr - 1) / nr;
  for (int kk = 0; kk < kc; ++kk) {
    const Im2colRow r = im2col_row(g, k0 + kk);
    for (std::int64_t t = 0; t < slivers; ++t) {
      const std::int64_t cols = std::min<std::int64_t>(nr, nc - t * nr);
      T* dst = bp + (t * kc + kk) * nr;
      im2col_segment(g, x, r, n0 + t * nr, cols, dst);
      std::fill(dst + cols, dst + nr, T(0));
    }
  }
}

}  // namespace cpu
}  // namespace pyfastnn
