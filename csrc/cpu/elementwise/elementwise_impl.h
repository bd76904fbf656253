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
ElementwiseKernels<T> make_elementwise_kernels() {
  return ElementwiseKernels<T>{&bias_activation_rows<T>};
}

}  // namespace PFN_ISA_NS
}  // namespace cpu
}  // namespace pyfastnn
