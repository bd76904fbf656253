// Stride-1 unfold / fold over the padded layout, vectorised: row k of the
// unfolded chunk, output pixels p0 .. p0+pc, is one contiguous run of the
// padded image per output row it touches.
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cpu/vec/vec.h"

namespace pyfastnn {
namespace cpu {
namespace PFN_ISA_NS {

// Calls f(src_offset, dst_index, len) for each output-row run of [p0, p0+pc).
template <class F>
inline void for_each_run(std::int64_t wp, std::int64_t ow, std::int64_t p0, std::int64_t pc, F&& f) {
  for (std::int64_t p = p0; p < p0 + pc;) {
    const std::int64_t oy = p / ow, ox = p % ow, len = std::min(ow - ox, p0 + pc - p);
    f(oy * wp + ox, p - p0, len);
    p += len;
  }
}

// col[k][i] = xpad[row_offset[k] + pos(p0 + i)], col row-major K x pc with
// row stride ld.
template <class T>
void unfold_stride1(std::int64_t K, std::int64_t pc, const T* xpad, const std::int64_t* row_offset,
                    std::int64_t wp, std::int64_t ow, std::int64_t p0, T* col, std::int64_t ld) {
  using V = Vec<T>;
  if (p0 % ow == 0 && pc % ow == 0) {
    // Whole output rows (the usual case): plain loops. With small images (ow = 11 at
    // 13x13) the run bookkeeping (a division per run) cost as much as the copying.
    const std::int64_t oy0 = p0 / ow, rows = pc / ow, full = ow - ow % V::size;
    const int tail = static_cast<int>(ow % V::size);
    for (std::int64_t k = 0; k < K; ++k) {
      const T* src = xpad + row_offset[k] + oy0 * wp;
      T* dst = col + k * ld;
      for (std::int64_t r = 0; r < rows; ++r, src += wp, dst += ow) {
        for (std::int64_t i = 0; i < full; i += V::size) V::load(src + i).store(dst + i);
        if (tail) V::load_partial(src + full, tail).store_partial(dst + full, tail);
      }
    }
    return;
  }
  for (std::int64_t k = 0; k < K; ++k) {
    const T* src = xpad + row_offset[k];
    T* dst = col + k * ld;
    for_each_run(wp, ow, p0, pc, [&](std::int64_t s, std::int64_t d, std::int64_t len) {
      std::int64_t i = 0;
      for (; i + V::size <= len; i += V::size) V::load(src + s + i).store(dst + d + i);
      if (i < len) V::load_partial(src + s + i, static_cast<int>(len - i)).store_partial(dst + d + i, static_cast<int>(len - i));
    });
  }
}

template <class V>
constexpr bool lane_ranges() {
  return HasLaneRange<V>::value;
}

// fold for narrow rows (ow + taps - 1 <= one vector): rows k whose offsets step
// by one (the kx taps of one (c, ky)) land on one stretch of the padded row, so
// their shifted col rows are summed in a register and the row is loaded and
// stored once per group. One at a time, each masked store of a row was read back
// by the next, overlapping, row's load: a failed store forward every time.
template <class T, class V = Vec<T>>
bool fold_rows_grouped(std::int64_t K, std::int64_t pc, const T* col, std::int64_t ld, T* xpad,
                       const std::int64_t* row_offset, std::int64_t wp, std::int64_t ow, std::int64_t p0) {
  constexpr int W = V::size;
  if (ow > W) return false;
  const std::int64_t oy0 = p0 / ow, rows = pc / ow;
  for (std::int64_t k0 = 0; k0 < K;) {
    std::int64_t g = 1;
    while (k0 + g < K && row_offset[k0 + g] == row_offset[k0] + g && ow + g < W + 1) ++g;
    const int span = static_cast<int>(ow + g - 1);
    T* dst = xpad + row_offset[k0] + oy0 * wp;
    for (std::int64_t r = 0; r < rows; ++r, dst += wp) {
      V acc = V::load_partial(dst, span);
      for (std::int64_t j = 0; j < g; ++j)   // row k0+j adds col[k0+j][r*ow + i] at dst[i + j]
        acc = acc + V::load_lanes(col + (k0 + j) * ld + r * ow - j, static_cast<int>(j), static_cast<int>(j + ow));
      acc.store_partial(dst, span);
    }
    k0 += g;
  }
  return true;
}

// xpad[row_offset[k] + pos(p0 + i)] += col[k][i]: the adjoint of unfold_stride1.
template <class T>
void fold_stride1_add(std::int64_t K, std::int64_t pc, const T* col, std::int64_t ld, T* xpad,
                      const std::int64_t* row_offset, std::int64_t wp, std::int64_t ow, std::int64_t p0) {
  using V = Vec<T>;
  if constexpr (lane_ranges<V>()) {
    if (p0 % ow == 0 && pc % ow == 0 && fold_rows_grouped(K, pc, col, ld, xpad, row_offset, wp, ow, p0)) return;
  }
  if (p0 % ow == 0 && pc % ow == 0) {   // whole output rows: plain loops, as in unfold_stride1
    const std::int64_t oy0 = p0 / ow, rows = pc / ow, full = ow - ow % V::size;
    const int tail = static_cast<int>(ow % V::size);
    for (std::int64_t k = 0; k < K; ++k) {
      T* dst = xpad + row_offset[k] + oy0 * wp;
      const T* src = col + k * ld;
      for (std::int64_t r = 0; r < rows; ++r, dst += wp, src += ow) {
        for (std::int64_t i = 0; i < full; i += V::size) (V::load(dst + i) + V::load(src + i)).store(dst + i);
        if (tail)
          (V::load_partial(dst + full, tail) + V::load_partial(src + full, tail)).store_partial(dst + full, tail);
      }
    }
    return;
  }
  for (std::int64_t k = 0; k < K; ++k) {
    T* dst = xpad + row_offset[k];
    const T* src = col + k * ld;
    for_each_run(wp, ow, p0, pc, [&](std::int64_t d, std::int64_t s, std::int64_t len) {
      std::int64_t i = 0;
      for (; i + V::size <= len; i += V::size) (V::load(dst + d + i) + V::load(src + s + i)).store(dst + d + i);
      if (i < len) {
        const int r = static_cast<int>(len - i);
        (V::load_partial(dst + d + i, r) + V::load_partial(src + s + i, r)).store_partial(dst + d + i, r);
      }
    });
  }
}

}  // namespace PFN_ISA_NS
}  // namespace cpu
}  // namespace pyfastnn
