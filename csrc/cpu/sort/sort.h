// topk and sort along one dim. Values become integer keys whose order is the
// wanted one (largest first: floats by value with every NaN above +inf and
// -0 equal to +0, as torch compares them; smallest first: the keys inverted),
// and every selection uses the strict order (key descending, index
// ascending): ties go to the lower index, so the result is one fixed answer
// whatever the algorithm or the thread count.
#pragma once
#include <cstdint>
#include <type_traits>

#include "runtime/cpu_info.h"

namespace pyfastnn {
namespace cpu {

// The key of a value type: int32 for float, int64 for double and int64.
template <class T>
using SortKey = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;

template <class T>
struct SortKernels {
  // keys[i] = key(x[i]) (largest) or ~key(x[i]) (smallest first), i < n.
  void (*make_keys)(const T* x, std::int64_t n, bool largest, SortKey<T>* keys);
  // The first i in [i0, n) with keys[i] > t, or n.
  std::int64_t (*find_above)(const SortKey<T>* keys, std::int64_t i0, std::int64_t n, SortKey<T> t);
};

template <class T>
const SortKernels<T>& sort_kernels(CpuIsa isa);
void sort_kernels_scalar(SortKernels<float>* f32, SortKernels<double>* f64);
void sort_kernels_avx2(SortKernels<float>* f32, SortKernels<double>* f64);
void sort_kernels_avx512(SortKernels<float>* f32, SortKernels<double>* f64);

// x (outer, L, inner) contiguous; values/indices (outer, k, inner): the k
// largest (or smallest) along the middle dim, best first. T float, double or int64.
template <class T>
void topk(const T* x, std::int64_t outer, std::int64_t L, std::int64_t inner, std::int64_t k, bool largest,
          T* values, std::int64_t* indices);

// The whole line ordered (stable: equal values keep their order), into (outer, L, inner).
template <class T>
void sort(const T* x, std::int64_t outer, std::int64_t L, std::int64_t inner, bool descending, T* values,
          std::int64_t* indices);

}  // namespace cpu
}  // namespace pyfastnn
