// The affine warp: per output pixel, a tap pair along each axis with scipy's
// boundary mapping (ni_interpolation.c: map_coordinate for the coordinate,
// then the spline boundary mode for taps that fall outside), weights
// w0 = 1 - frac, w1 = 1 - w0, and the sum p00*wr0*wc0 + p01*wr0*wc1 + ...
// in that order, in double. Gathers from an image that sits in L2: one scalar
// version serves every ISA level.
#include "cpu/image/affine_warp.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/parallel.h"

namespace pyfastnn {
namespace cpu {

namespace {

// Far enough outside any image that the boundary mapping still sees it as
// outside, small enough for an exact int64 floor.
constexpr double kCoordLimit = 1e15;

// floor() for |v| <= kCoordLimit without a libm call (the baseline x86-64
// build has no roundsd); exact, so the weights stay scipy's.
inline double floor_small(double v) {
  const double t = static_cast<double>(static_cast<std::int64_t>(v));
  return t > v ? t - 1.0 : t;
}

// scipy's map_coordinate for an input coordinate outside [0, len - 1].
double map_coordinate(double in, std::int64_t len, FillMode mode) {
  if (in < 0) {
    switch (mode) {
      case FillMode::reflect:
        if (len <= 1) return 0;
        {
          const std::int64_t sz2 = 2 * len;
          if (in < -sz2) in = sz2 * static_cast<std::int64_t>(-in / sz2) + in;
          // -1e-15: keeps -in - 1 from rounding to -1 for a tiny negative in
          in = in < -len ? in + sz2 : (in > -1e-15 ? 1e-15 : -in) - 1;
        }
        return in;
      case FillMode::wrap:
        if (len <= 1) return 0;
        {
          const std::int64_t sz = len - 1;
          in += sz * (static_cast<std::int64_t>(-in / sz) + 1);
        }
        return in;
      case FillMode::nearest:
        return 0;
      case FillMode::constant:
        return -1;
    }
  } else if (in > len - 1) {
    switch (mode) {
      case FillMode::reflect:
        if (len <= 1) return 0;
        {
          const std::int64_t sz2 = 2 * len;
          in -= sz2 * static_cast<std::int64_t>(in / sz2);
          if (in >= len) in = sz2 - in - 1;
        }
        return in;
      case FillMode::wrap:
        if (len <= 1) return 0;
        {
          const std::int64_t sz = len - 1;
          in -= sz * static_cast<std::int64_t>(in / sz);
        }
        return in;
      case FillMode::nearest:
        return static_cast<double>(len - 1);
      case FillMode::constant:
        return -1;
    }
  }
  return in;
}

// A tap index outside [0, len) under the spline boundary mode scipy pairs
// with each fill mode: mirror for 'constant' and 'wrap', reflect for
// 'reflect', clamping for 'nearest'. Always lands inside [0, len).
std::int64_t map_tap(std::int64_t idx, std::int64_t len, FillMode mode) {
  if (idx >= 0 && idx < len) return idx;
  if (len <= 1) return 0;
  switch (mode) {
    case FillMode::nearest:
      return idx < 0 ? 0 : len - 1;
    case FillMode::reflect: {
      const std::int64_t sz2 = 2 * len;
      if (idx < 0) {
        if (idx < -sz2) idx = sz2 * (-idx / sz2) + idx;
        idx = idx < -len ? idx + sz2 : -idx - 1;
      } else {
        idx -= sz2 * (idx / sz2);
        if (idx >= len) idx = sz2 - idx - 1;
      }
      break;
    }
    case FillMode::constant:
    case FillMode::wrap: {  // mirror
      const std::int64_t sz2 = 2 * len - 2;
      if (idx < 0) {
        idx = sz2 * (-idx / sz2) + idx;
        idx = idx <= 1 - len ? idx + sz2 : -idx;
      } else {
        idx -= sz2 * (idx / sz2);
        if (idx >= len) idx = sz2 - idx;
      }
      break;
    }
  }
  return std::clamp<std::int64_t>(idx, 0, len - 1);  // the mappings above already land inside; never read out of bounds
}

struct AxisTaps {
  std::int64_t i0, i1;
  double w0, w1;
};

// Taps and weights along one axis; false when the pixel takes cval (scipy's
// 'constant' outside [0, len - 1], or a coordinate that is not finite).
bool axis_taps(double cc, std::int64_t len, FillMode mode, int order, AxisTaps* t) {
  if (!std::isfinite(cc)) return false;
  if (mode == FillMode::nearest) {
    cc = std::clamp(cc, -kCoordLimit, kCoordLimit);  // taps clamp anyway; the weights stay scipy's
  } else {
    if (std::fabs(cc) > kCoordLimit) return false;
    cc = map_coordinate(cc, len, mode);
    if (!(cc > -1.0)) return false;
  }
  if (order == 0) {
    const std::int64_t start = static_cast<std::int64_t>(floor_small(cc + 0.5));
    t->i0 = t->i1 = map_tap(start, len, mode);
    t->w0 = 1.0;
    t->w1 = 0.0;
    return true;
  }
  const double fl = floor_small(cc);
  const std::int64_t start = static_cast<std::int64_t>(fl);
  t->i0 = map_tap(start, len, mode);
  t->i1 = map_tap(start + 1, len, mode);
  t->w0 = 1.0 - (cc - fl);
  t->w1 = 1.0 - t->w0;
  return true;
}

// Writes the bilinear sum of one pixel's four taps, in scipy's order.
template <class T, int CH>
inline void blend4(const T* p00, const T* p01, const T* p10, const T* p11, double wr0, double wr1, double wc0,
                   double wc1, std::int64_t C, T* o) {
  const std::int64_t n = CH > 0 ? CH : C;
  for (std::int64_t k = 0; k < n; ++k) {
    double t = static_cast<double>(p00[k]) * wr0 * wc0;
    t += static_cast<double>(p01[k]) * wr0 * wc1;
    t += static_cast<double>(p10[k]) * wr1 * wc0;
    t += static_cast<double>(p11[k]) * wr1 * wc1;
    o[k] = static_cast<T>(t);
  }
}

// One output row of one image. CH > 0 fixes the channel count at compile time. Bilinear 'nearest' and
// 'constant' (the common fills) take a branch-light path: clamped taps are scipy's taps for 'nearest';
// for 'constant' a clamped second tap only ever replaces a tap of weight 0 (scipy mirrors it).
template <class T, int CH>
void warp_row(const WarpGeometry& g, const T* img, const double* m, std::int64_t r, T* out_row, bool flip_cols) {
  const std::int64_t C = CH > 0 ? CH : g.c;
  const std::int64_t H = g.h, W = g.w, OW = g.ow;
  const double rd = static_cast<double>(r);
  // scipy sums shift + o0*m[.,0] + o1*m[.,1] in this order.
  const double base_r = m[2] + rd * m[0];
  const double base_c = m[5] + rd * m[3];
  const T cval = static_cast<T>(g.cval);
  const double hmax = static_cast<double>(H - 1), wmax = static_cast<double>(W - 1);
  const bool fast = g.order == 1 && (g.mode == FillMode::nearest || g.mode == FillMode::constant);
  const bool constant = g.mode == FillMode::constant;
  for (std::int64_t c = 0; c < OW; ++c) {
    const double cd = static_cast<double>(c);
    const double cr = base_r + cd * m[1];
    const double cc = base_c + cd * m[4];
    T* o = out_row + (flip_cols ? OW - 1 - c : c) * C;
    if (fast) {
      if (cr != cr || cc != cc) {  // NaN from inf - inf in the map: no pixel to read
        for (std::int64_t k = 0; k < C; ++k) o[k] = cval;
        continue;
      }
      if (constant) {
        if (!(cr >= 0 && cr <= hmax && cc >= 0 && cc <= wmax)) {
          for (std::int64_t k = 0; k < C; ++k) o[k] = cval;
          continue;
        }
      }
      const double crc = std::clamp(cr, -kCoordLimit, kCoordLimit), ccc = std::clamp(cc, -kCoordLimit, kCoordLimit);
      const double fr = floor_small(crc), fc = floor_small(ccc);
      const std::int64_t r0 = static_cast<std::int64_t>(fr), c0 = static_cast<std::int64_t>(fc);
      const double wr0 = 1.0 - (crc - fr), wr1 = 1.0 - wr0;
      const double wc0 = 1.0 - (ccc - fc), wc1 = 1.0 - wc0;
      const std::int64_t ra = std::clamp<std::int64_t>(r0, 0, H - 1), rb = std::clamp<std::int64_t>(r0 + 1, 0, H - 1);
      const std::int64_t ca = std::clamp<std::int64_t>(c0, 0, W - 1), cb = std::clamp<std::int64_t>(c0 + 1, 0, W - 1);
      const T* rowa = img + ra * W * C;
      const T* rowb = img + rb * W * C;
      blend4<T, CH>(rowa + ca * C, rowa + cb * C, rowb + ca * C, rowb + cb * C, wr0, wr1, wc0, wc1, C, o);
      continue;
    }
    AxisTaps tr, tc;
    if (!axis_taps(cr, H, g.mode, g.order, &tr) || !axis_taps(cc, W, g.mode, g.order, &tc)) {
      for (std::int64_t k = 0; k < C; ++k) o[k] = cval;
      continue;
    }
    const T* p00 = img + (tr.i0 * W + tc.i0) * C;
    if (g.order == 0) {
      for (std::int64_t k = 0; k < C; ++k) o[k] = p00[k];
      continue;
    }
    blend4<T, CH>(p00, img + (tr.i0 * W + tc.i1) * C, img + (tr.i1 * W + tc.i0) * C, img + (tr.i1 * W + tc.i1) * C,
                  tr.w0, tr.w1, tc.w0, tc.w1, C, o);
  }
}

bool is_identity(const double* m) {
  return m[0] == 1.0 && m[1] == 0.0 && m[2] == 0.0 && m[3] == 0.0 && m[4] == 1.0 && m[5] == 0.0;
}

template <class T, int CH>
void warp_rows(const WarpGeometry& g, const T* x, const double* matrices, const std::uint8_t* flags, T* y,
               std::int64_t row0, std::int64_t row1) {
  const std::int64_t C = g.c, in_image = g.h * g.w * C, out_row = g.ow * C;
  for (std::int64_t q = row0; q < row1; ++q) {
    const std::int64_t i = q / g.oh, r = q % g.oh;
    const std::uint8_t f = flags ? flags[i] : 0;
    const bool flip_cols = (f & kWarpFlipCols) != 0;
    const std::int64_t orow = (f & kWarpFlipRows) ? g.oh - 1 - r : r;
    const double* m = matrices + 6 * i;
    const T* img = x + i * in_image;
    T* dst = y + (i * g.oh + orow) * out_row;
    if (is_identity(m) && g.oh == g.h && g.ow == g.w) {
      // Keras skips the warp when no transform is drawn: an exact copy.
      const T* src = img + r * out_row;
      if (!flip_cols) {
        std::memcpy(dst, src, sizeof(T) * out_row);
      } else {
        for (std::int64_t c = 0; c < g.ow; ++c) std::memcpy(dst + (g.ow - 1 - c) * C, src + c * C, sizeof(T) * C);
      }
      continue;
    }
    warp_row<T, CH>(g, img, m, r, dst, flip_cols);
  }
}

}  // namespace

template <class T>
void affine_warp(const WarpGeometry& g, const T* x, const double* matrices, const std::uint8_t* flags, T* y,
                 int nthreads) {
  const std::int64_t rows = g.n * g.oh;
  const std::int64_t grain = std::max<std::int64_t>(1, (std::int64_t{1} << 14) / std::max<std::int64_t>(1, g.ow * g.c));
  auto body = [&](std::int64_t a, std::int64_t b) {
    switch (g.c) {
      case 1: warp_rows<T, 1>(g, x, matrices, flags, y, a, b); break;
      case 3: warp_rows<T, 3>(g, x, matrices, flags, y, a, b); break;
      case 4: warp_rows<T, 4>(g, x, matrices, flags, y, a, b); break;
      default: warp_rows<T, 0>(g, x, matrices, flags, y, a, b); break;
    }
  };
  if (nthreads <= 1) {
    body(0, rows);
    return;
  }
  parallel_for(rows, grain, body);
}

template void affine_warp<float>(const WarpGeometry&, const float*, const double*, const std::uint8_t*, float*, int);
template void affine_warp<double>(const WarpGeometry&, const double*, const double*, const std::uint8_t*, double*,
                                  int);

}  // namespace cpu
}  // namespace pyfastnn
