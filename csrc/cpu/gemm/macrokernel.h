// Loops 2 and 1 around the microkernel: each A sliver (held in L1) against
// every packed B sliver of the block (streamed from L2). Partial tiles at the
// right and bottom edges are stored by the microkernel with masks.
//
// A comes packed (lda == 0) or, when its rows are contiguous in k, straight
// from the caller's row-major matrix (lda = row stride): the microkernel only
// broadcasts single elements of A, so packing it would buy nothing but a
// transpose. Only a partial last sliver is packed, to zero-pad it.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cpu/gemm/microkernel.h"
#include "cpu/gemm/pack.h"
#include "cpu/vec/vec_math.h"

namespace pyfastnn {
namespace cpu {
namespace PFN_ISA_NS {

// One register tile of NV vectors over a packed B sliver BV vectors wide; A
// packed, or read in place (row stride lda).
template <class T, int MR, int NV, int BV>
inline void tile(bool packed_a, int kc, const T* a, std::ptrdiff_t lda, const T* bp, T* c, std::ptrdiff_t ldc,
                 bool accumulate, int rows, int cols) {
  if (packed_a) microkernel<T, MR, NV, true, BV>(kc, a, 0, bp, c, ldc, accumulate, rows, cols);
  else microkernel<T, MR, NV, false, BV>(kc, a, lda, bp, c, ldc, accumulate, rows, cols);
}

template <class T, int MR, int NV>
void macro_kernel(std::int64_t mc, std::int64_t nc, int kc, const T* a, std::ptrdiff_t lda, const T* bp, T* c,
                  std::ptrdiff_t ldc, bool accumulate, bool last, const T* bias, bool bias_per_row,
                  Activation act) {
  constexpr int NR = NV * Vec<T>::size;
  const bool epilogue = last && (bias != nullptr || act != Activation::none);
  alignas(64) T a_edge[MR * kMaxKc];
  for (std::int64_t i0 = 0; i0 < mc; i0 += MR) {
    const int rows = mc - i0 < MR ? static_cast<int>(mc - i0) : MR;
    const bool packed = lda == 0 || rows < MR;
    const T* a_sliver = lda == 0 ? a + i0 * kc : a + i0 * lda;
    if (lda != 0 && rows < MR) {
      pack_a<T, MR>(rows, kc, a_sliver, lda, 1, a_edge);
      a_sliver = a_edge;
    }
    for (std::int64_t j0 = 0; j0 < nc; j0 += NR) {
      const int cols = nc - j0 < NR ? static_cast<int>(nc - j0) : NR;
      const T* b_sliver = bp + j0 * kc;
      T* ct = c + i0 * ldc + j0;
      // A last panel of one or two vectors' width (N = 64 against a 48-wide
      // tile, say) runs a narrower tile over the same packed sliver instead of
      // spending whole FMAs on zero padding.
      constexpr int W = Vec<T>::size;
      if (NV > 1 && cols <= W) {
        tile<T, MR, 1, NV>(packed, kc, a_sliver, lda, b_sliver, ct, ldc, accumulate, rows, cols);
      } else if (NV > 2 && cols <= 2 * W) {
        tile<T, MR, (NV > 2 ? 2 : NV), NV>(packed, kc, a_sliver, lda, b_sliver, ct, ldc, accumulate, rows, cols);
      } else {
        tile<T, MR, NV, NV>(packed, kc, a_sliver, lda, b_sliver, ct, ldc, accumulate, rows, cols);
      }
      if (epilogue) {
        for (int i = 0; i < rows; ++i) {
          if (bias_per_row) scalar_bias_activation_row(ct + i * ldc, bias[i0 + i], cols, act);
          else bias_activation_row(ct + i * ldc, bias ? bias + j0 : nullptr, cols, act);
        }
      }
    }
  }
}

}  // namespace PFN_ISA_NS
}  // namespace cpu
}  // namespace pyfastnn
