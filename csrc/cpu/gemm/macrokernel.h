// Loops 2 and 1 around the microkernel: each packed A sliver (held in L1)
// against every packed B sliver of the block (streamed from L2). Partial
// tiles at the right and bottom edges go through a small local buffer.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cpu/gemm/microkernel.h"
#include "cpu/vec/vec_math.h"

namespace pyfastnn {
namespace cpu {
namespace PFN_ISA_NS {

template <class T, int MR, int NV>
void macro_kernel(std::int64_t mc, std::int64_t nc, int kc, const T* ap, const T* bp, T* c,
                  std::ptrdiff_t ldc, bool accumulate, bool last, const T* bias, Activation act) {
  constexpr int NR = NV * Vec<T>::size;
  const bool epilogue = last && (bias != nullptr || act != Activation::none);
  alignas(64) T edge[MR * NR];
  for (std::int64_t i0 = 0; i0 < mc; i0 += MR) {
    const int rows = mc - i0 < MR ? static_cast<int>(mc - i0) : MR;
    const T* a_sliver = ap + i0 * kc;
    for (std::int64_t j0 = 0; j0 < nc; j0 += NR) {
      const int cols = nc - j0 < NR ? static_cast<int>(nc - j0) : NR;
      const T* b_sliver = bp + j0 * kc;
      T* ct = c + i0 * ldc + j0;
      if (rows == MR && cols == NR) {
        microkernel<T, MR, NV>(kc, a_sliver, b_sliver, ct, ldc, accumulate);
      } else {
        microkernel<T, MR, NV>(kc, a_sliver, b_sliver, edge, NR, false);
        for (int i = 0; i < rows; ++i)
          for (int j = 0; j < cols; ++j)
            ct[i * ldc + j] = accumulate ? ct[i * ldc + j] + edge[i * NR + j] : edge[i * NR + j];
      }
      if (epilogue)
        for (int i = 0; i < rows; ++i)
          bias_activation_row(ct + i * ldc, bias ? bias + j0 : nullptr, cols, act);
    }
  }
}

}  // namespace PFN_ISA_NS
}  // namespace cpu
}  // namespace pyfastnn
