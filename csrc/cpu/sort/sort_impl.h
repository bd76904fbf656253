// Templates behind SortKernels; included once per ISA translation unit. Plain
// branch-free loops over bit patterns that the compiler vectorises for the
// level's instruction set.
#pragma once
#include <cstring>
#include <limits>

#include "cpu/sort/sort.h"

namespace pyfastnn {
namespace cpu {
namespace PFN_ISA_NS {

// reference: key = bits >= 0 ? bits : bits ^ 0x7f..f (negatives reversed),
// NaN -> the largest key, -0 -> +0's key 0; smallest first: ~key.
template <class T>
void make_keys(const T* x, std::int64_t n, bool largest, SortKey<T>* keys) {
  using K = SortKey<T>;
  constexpr K kMax = std::numeric_limits<K>::max();
  constexpr int kShift = 8 * sizeof(K) - 1;
  const K flip = largest ? K(0) : K(-1);
  for (std::int64_t i = 0; i < n; ++i) {
    K b;
    std::memcpy(&b, x + i, sizeof(K));
    K k = b ^ ((b >> kShift) & kMax);
    k = k == K(-1) ? K(0) : k;
    k = x[i] != x[i] ? kMax : k;
    keys[i] = k ^ flip;
  }
}

template <class K>
std::int64_t find_above(const K* keys, std::int64_t i0, std::int64_t n, K t) {
  constexpr std::int64_t B = 64 / sizeof(K) * 2;  // two vectors of the widest level
  std::int64_t i = i0;
  for (; i + B <= n; i += B) {
    int any = 0;
    for (std::int64_t j = 0; j < B; ++j) any |= keys[i + j] > t;
    if (any) break;
  }
  for (; i < n; ++i)
    if (keys[i] > t) return i;
  return n;
}

template <class T>
SortKernels<T> make_sort_kernels() {
  return SortKernels<T>{&make_keys<T>, &find_above<SortKey<T>>};
}

}  // namespace PFN_ISA_NS
}  // namespace cpu
}  // namespace pyfastnn
