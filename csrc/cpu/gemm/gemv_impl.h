// The GEMV kernels, written once against Vec<T>; included by one translation
// unit per ISA level. The plain math each one computes:
//   for i < m, j in [j0, j1):  c[i][j] = sum_p a[i][p] * w[j][p]
#pragma once
#include "cpu/gemm/gemv.h"
#include "cpu/vec/vec_math.h"

#include <algorithm>

namespace pyfastnn {
namespace cpu {
namespace PFN_ISA_NS {

template <class T>
inline T horizontal_sum(Vec<T> v) {
  alignas(64) T lanes[Vec<T>::size];
  v.store(lanes);
  T s = 0;
  for (int l = 0; l < Vec<T>::size; ++l) s += lanes[l];
  return s;
}

// One row of W against M rows of A, read as one sequential stream (the
// hardware prefetcher's best case: interleaving four rows of W ran at 18 GB/s
// on two Zen 5 cores, one row at a time at 42). Two accumulators per row of A
// halve the FMA dependency chain; the k tail is one masked vector.
template <class T, int M>
void dots_1row(std::int64_t k, const T* a, std::ptrdiff_t lda, const T* w, T* c, std::ptrdiff_t ldc) {
  using V = Vec<T>;
  V acc[M][2];
  for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = V::zero();
  std::int64_t p = 0;
  for (; p + 2 * V::size <= k; p += 2 * V::size) {
    const V b0 = V::load(w + p), b1 = V::load(w + p + V::size);
    for (int i = 0; i < M; ++i) {
      acc[i][0] = V::fma(V::load(a + i * lda + p), b0, acc[i][0]);
      acc[i][1] = V::fma(V::load(a + i * lda + p + V::size), b1, acc[i][1]);
    }
  }
  for (; p < k; p += V::size) {
    const int rest = static_cast<int>(std::min<std::int64_t>(V::size, k - p));
    const V b = V::load_partial(w + p, rest);
    for (int i = 0; i < M; ++i) acc[i][0] = V::fma(V::load_partial(a + i * lda + p, rest), b, acc[i][0]);
  }
  for (int i = 0; i < M; ++i) c[i * ldc] = horizontal_sum(acc[i][0] + acc[i][1]);
}

template <class T, int M>
void dots_m(std::int64_t k, const T* a, std::ptrdiff_t lda, const T* w, std::ptrdiff_t ldw, std::int64_t j0,
            std::int64_t j1, T* c, std::ptrdiff_t ldc) {
  for (std::int64_t j = j0; j < j1; ++j) dots_1row<T, M>(k, a, lda, w + j * ldw, c + j, ldc);
}

template <class T>
void dots(std::int64_t m, std::int64_t k, const T* a, std::ptrdiff_t lda, const T* w, std::ptrdiff_t ldw,
          std::int64_t j0, std::int64_t j1, T* c, std::ptrdiff_t ldc) {
  switch (m) {
    case 1: return dots_m<T, 1>(k, a, lda, w, ldw, j0, j1, c, ldc);
    case 2: return dots_m<T, 2>(k, a, lda, w, ldw, j0, j1, c, ldc);
    case 3: return dots_m<T, 3>(k, a, lda, w, ldw, j0, j1, c, ldc);
    default: return dots_m<T, 4>(k, a, lda, w, ldw, j0, j1, c, ldc);
  }
}

template <class T>
void epilogue(T* c, const T* bias, std::int64_t j0, std::int64_t j1, Activation act) {
  if (bias == nullptr && act == Activation::none) return;
  bias_activation_row(c + j0, bias ? bias + j0 : nullptr, j1 - j0, act);
}

template <class T>
GemvKernels<T> make_gemv_kernels() {
  return GemvKernels<T>{&dots<T>, &epilogue<T>};
}

}  // namespace PFN_ISA_NS
}  // namespace cpu
}  // namespace pyfastnn
