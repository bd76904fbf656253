// The register tile: MR x (NV vectors) accumulators, one broadcast of A and
// NV loads of B per k step. Everything else in the GEMM exists to keep this
// loop fed from L1.
#pragma once
#include <cstddef>

#include "cpu/vec/vec.h"

namespace pyfastnn {
namespace cpu {
namespace PFN_ISA_NS {

// c[0:rows, 0:cols] (+)= A sliver · B sliver for the MR x NV*W register
// tile (W = Vec<T>::size); a partial tile at the bottom or right edge stores
// only its rows/cols, with masked stores.
// bp: packed, kc x BV*W (k-major; BV >= NV: a narrower tile can run over the
// first NV vectors of a wider packed panel). A is either packed (kPackedA:
// kc x MR, k-major, lda unused) or read in place from row-major A with row
// stride lda (MR rows, each contiguous in k). c row stride ldc.
template <class T, int MR, int NV, bool kPackedA, int BV = NV>
void microkernel(int kc, const T* __restrict ap, std::ptrdiff_t lda, const T* __restrict bp, T* __restrict c,
                 std::ptrdiff_t ldc, bool accumulate, int rows = MR, int cols = NV * Vec<T>::size) {
  using V = Vec<T>;
  constexpr int W = V::size;
  V acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[i][j] = V::zero();

  for (int k = 0; k < kc; ++k) {
    V b[NV];
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) b[j] = V::load(bp + j * W);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const V a = V::broadcast(kPackedA ? ap[i] : ap[i * lda]);
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i][j] = V::fma(a, b[j], acc[i][j]);
    }
    ap += kPackedA ? MR : 1;
    bp += BV * W;
  }

  if (rows == MR && cols == NV * W) {
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      T* row = c + i * ldc;
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) {
        V v = acc[i][j];
        if (accumulate) v = v + V::load(row + j * W);
        v.store(row + j * W);
      }
    }
    return;
  }
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
    if (i >= rows) break;
    T* row = c + i * ldc;
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
      const int n = cols - j * W;
      if (n <= 0) break;
      V v = acc[i][j];
      if (n >= W) {
        if (accumulate) v = v + V::load(row + j * W);
        v.store(row + j * W);
      } else {
        if (accumulate) v = v + V::load_partial(row + j * W, n);
        v.store_partial(row + j * W, n);
      }
    }
  }
}

}  // namespace PFN_ISA_NS
}  // namespace cpu
}  // namespace pyfastnn
