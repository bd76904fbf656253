// Templates behind ElementwiseKernels; included once per ISA translation unit.
#pragma once
#include "cpu/elementwise/elementwise.h"
#include "cpu/vec/vec_math.h"

namespace pyfastnn {
namespace cpu {
namespace PFN_ISA_NS {

template <class T>
void bias_activation_rows(T* y, const T* bias, std::int64_t rows, std::int64_t cols, Activation act) {
  for (std::int64_t r = 0; r < rows; ++r)
    bias_activation_row(y + r * cols, bias, cols, act);
}

template <class T>
T sum(const T* x, std::int64_t n) {
  using V = Vec<T>;
  constexpr int W = V::size;
  V acc[4] = {V::zero(), V::zero(), V::zero(), V::zero()};
  std::int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W)
    for (int u = 0; u < 4; ++u) acc[u] = acc[u] + V::load(x + i + u * W);
  for (; i + W <= n; i += W) acc[0] = acc[0] + V::load(x + i);
  if (i < n) acc[1] = acc[1] + V::load_partial(x + i, static_cast<int>(n - i));
  alignas(64) T lanes[W];
  ((acc[0] + acc[1]) + (acc[2] + acc[3])).store(lanes);
  T total = 0;
  for (int j = 0; j < W; ++j) total += lanes[j];
  return total;
}

template <class T>
ElementwiseKernels<T> make_elementwise_kernels() {
  return ElementwiseKernels<T>{&bias_activation_rows<T>, &sum<T>};
}

}  // namespace PFN_ISA_NS
}  // namespace cpu
}  // namespace pyfastnn
