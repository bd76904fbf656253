// Stride-1 unfold / fold over the padded layout, vectorised: row k of the
// unfolded chunk, output pixels p0 .. p0+pc, is one contiguous run of the
// padded image per output row it touches.
#pragma once
#include <algorithm>
#include <cstdint>

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

// xpad[row_offset[k] + pos(p0 + i)] += col[k][i]: the adjoint of unfold_stride1.
template <class T>
void fold_stride1_add(std::int64_t K, std::int64_t pc, const T* col, std::int64_t ld, T* xpad,
                      const std::int64_t* row_offset, std::int64_t wp, std::int64_t ow, std::int64_t p0) {
  using V = Vec<T>;
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
