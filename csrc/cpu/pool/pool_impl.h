// Generic pooling kernels (any kernel, stride, padding), compiled per ISA.
// The window bounds are clipped once per output, so the inner loops carry
// no bounds checks.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "cpu/pool/pool.h"
#include "cpu/vec/vec.h"

namespace pyfastnn {
namespace cpu {
namespace PFN_ISA_NS {

// Output columns [ox_lo, ox_hi) have windows fully inside the input columns.
inline void interior_columns(const PoolGeometry& g, std::int64_t* ox_lo, std::int64_t* ox_hi) {
  *ox_lo = std::min(g.OW, g.PW == 0 ? 0 : (g.PW - 1) / g.SW + 1);  // ceil(PW / SW), without overflow
  const std::int64_t last = g.W + g.PW - g.KW;  // ox*SW <= last keeps the window inside
  *ox_hi = last < 0 ? *ox_lo : std::max(*ox_lo, std::min(g.OW, last / g.SW + 1));
}

// take ? a : b on the bit patterns: compilers turn a ternary on floats into a
// branch, which random data mispredicts half the time.
template <class T>
inline T select_bits(bool take, T a, T b) {
  using Bits = typename std::conditional<sizeof(T) == 4, std::uint32_t, std::uint64_t>::type;
  Bits ab, bb;
  std::memcpy(&ab, &a, sizeof(T));
  std::memcpy(&bb, &b, sizeof(T));
  const Bits mask = static_cast<Bits>(0) - static_cast<Bits>(take);
  const Bits r = (ab & mask) | (bb & ~mask);
  T out;
  std::memcpy(&out, &r, sizeof(T));
  return out;
}

// Branch-free max step; the first NaN wins and stays, as in PyTorch.
template <class T>
inline void max_step(T v, std::int64_t at, T* best, std::int64_t* arg) {
  const bool take = (v > *best) | ((v != v) & (*best == *best));
  const std::int64_t mask = -static_cast<std::int64_t>(take);
  *arg = (at & mask) | (*arg & ~mask);
  *best = select_bits(take, v, *best);
}

template <class T>
void max_one(const PoolGeometry& g, const T* xp, std::int64_t oy, std::int64_t ox, T* y, std::int64_t* idx) {
  const std::int64_t y0 = std::max<std::int64_t>(0, oy * g.SH - g.PH), y1 = std::min(g.H, oy * g.SH - g.PH + g.KH);
  const std::int64_t x0 = std::max<std::int64_t>(0, ox * g.SW - g.PW), x1 = std::min(g.W, ox * g.SW - g.PW + g.KW);
  T best = -std::numeric_limits<T>::infinity();
  std::int64_t arg = y0 * g.W + x0;
  for (std::int64_t iy = y0; iy < y1; ++iy)
    for (std::int64_t ix = x0; ix < x1; ++ix) max_step(xp[iy * g.W + ix], iy * g.W + ix, &best, &arg);
  *y = best;
  *idx = arg;
}

template <class T>
void max_forward_generic(const PoolGeometry& g, const T* x, T* y, std::int64_t* idx, std::int64_t p0,
                         std::int64_t p1) {
  constexpr int B = 8;  // outputs advanced together: independent chains hide the select latency
  std::int64_t lo, hi;
  interior_columns(g, &lo, &hi);
  for (std::int64_t p = p0; p < p1; ++p) {
    const T* xp = x + p * g.H * g.W;
    T* yp = y + p * g.OH * g.OW;
    std::int64_t* ip = idx + p * g.OH * g.OW;
    for (std::int64_t oy = 0; oy < g.OH; ++oy) {
      const std::int64_t y0 = std::max<std::int64_t>(0, oy * g.SH - g.PH), y1 = std::min(g.H, oy * g.SH - g.PH + g.KH);
      std::int64_t ox = 0;
      for (; ox < lo; ++ox) max_one(g, xp, oy, ox, yp + oy * g.OW + ox, ip + oy * g.OW + ox);
      for (; ox + B <= hi; ox += B) {
        T best[B];
        std::int64_t arg[B];
        for (int u = 0; u < B; ++u) {
          best[u] = -std::numeric_limits<T>::infinity();
          arg[u] = y0 * g.W + (ox + u) * g.SW - g.PW;
        }
        for (std::int64_t iy = y0; iy < y1; ++iy) {
          const T* row = xp + iy * g.W;
          for (std::int64_t kx = 0; kx < g.KW; ++kx) {
            const std::int64_t ix0 = ox * g.SW - g.PW + kx;
#pragma GCC unroll 8
            for (int u = 0; u < B; ++u) max_step(row[ix0 + u * g.SW], iy * g.W + ix0 + u * g.SW, &best[u], &arg[u]);
          }
        }
        for (int u = 0; u < B; ++u) {
          yp[oy * g.OW + ox + u] = best[u];
          ip[oy * g.OW + ox + u] = arg[u];
        }
      }
      for (; ox < g.OW; ++ox) max_one(g, xp, oy, ox, yp + oy * g.OW + ox, ip + oy * g.OW + ox);
    }
  }
}

// Plane means: two vector accumulators, a masked tail, and the lanes added as
// a tree (the short planes of a ResNet head, 7x7, are mostly reduction).
// reference: s = 0; for (i < n) s += x[i]; y = s / n
template <class T>
void mean_planes(const T* x, std::int64_t n, T* y, std::int64_t p0, std::int64_t p1) {
  using V = Vec<T>;
  constexpr int W = V::size;
  const T count = static_cast<T>(n);
  for (std::int64_t p = p0; p < p1; ++p) {
    const T* xp = x + p * n;
    V a0 = V::zero(), a1 = V::zero();
    std::int64_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
      a0 = a0 + V::load(xp + i);
      a1 = a1 + V::load(xp + i + W);
    }
    if (i + W <= n) {
      a0 = a0 + V::load(xp + i);
      i += W;
    }
    if (i < n) a1 = a1 + V::load_partial(xp + i, static_cast<int>(n - i));
    alignas(64) T t[W];
    (a0 + a1).store(t);
    for (int w = W / 2; w >= 1; w /= 2)
      for (int j = 0; j < w; ++j) t[j] += t[j + w];
    y[p] = t[0] / count;
  }
}

template <class T>
T avg_one(const PoolGeometry& g, const T* xp, std::int64_t oy, std::int64_t ox) {
  const std::int64_t y0 = std::max<std::int64_t>(0, oy * g.SH - g.PH), y1 = std::min(g.H, oy * g.SH - g.PH + g.KH);
  const std::int64_t x0 = std::max<std::int64_t>(0, ox * g.SW - g.PW), x1 = std::min(g.W, ox * g.SW - g.PW + g.KW);
  T s = 0;
  for (std::int64_t iy = y0; iy < y1; ++iy)
    for (std::int64_t ix = x0; ix < x1; ++ix) s += xp[iy * g.W + ix];
  return s;
}

template <class T>
void avg_forward_generic(const PoolGeometry& g, const T* x, T* y, std::int64_t p0, std::int64_t p1) {
  constexpr int B = 8;
  const T scale = avg_scale<T>(g);  // padding is counted (count_include_pad)
  std::int64_t lo, hi;
  interior_columns(g, &lo, &hi);
  for (std::int64_t p = p0; p < p1; ++p) {
    const T* xp = x + p * g.H * g.W;
    T* yp = y + p * g.OH * g.OW;
    for (std::int64_t oy = 0; oy < g.OH; ++oy) {
      const std::int64_t y0 = std::max<std::int64_t>(0, oy * g.SH - g.PH), y1 = std::min(g.H, oy * g.SH - g.PH + g.KH);
      std::int64_t ox = 0;
      for (; ox < lo; ++ox) yp[oy * g.OW + ox] = avg_one(g, xp, oy, ox) * scale;
      for (; ox + B <= hi; ox += B) {
        // The same order of additions per output as avg_one, B outputs at a time.
        T s[B] = {};
        for (std::int64_t iy = y0; iy < y1; ++iy) {
          const T* row = xp + iy * g.W;
          for (std::int64_t kx = 0; kx < g.KW; ++kx) {
            const std::int64_t ix0 = ox * g.SW - g.PW + kx;
#pragma GCC unroll 8
            for (int u = 0; u < B; ++u) s[u] += row[ix0 + u * g.SW];
          }
        }
        for (int u = 0; u < B; ++u) yp[oy * g.OW + ox + u] = s[u] * scale;
      }
      for (; ox < g.OW; ++ox) yp[oy * g.OW + ox] = avg_one(g, xp, oy, ox) * scale;
    }
  }
}

}  // namespace PFN_ISA_NS
}  // namespace cpu
}  // namespace pyfastnn
