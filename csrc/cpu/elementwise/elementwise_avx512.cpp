// Elementwise kernels compiled for the avx512 level.
#define PFN_ISA_LEVEL 2
#define PFN_ISA_NS avx512
#include "cpu/elementwise/elementwise_impl.h"

namespace pyfastnn {
namespace cpu {

void elementwise_kernels_avx512(ElementwiseKernels<float>* f32, ElementwiseKernels<double>* f64) {
  *f32 = avx512::make_elementwise_kernels<float>();
  *f64 = avx512::make_elementwise_kernels<double>();
}

}  // namespace cpu
}  // namespace pyfastnn
