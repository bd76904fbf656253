// Elementwise kernels compiled for the avx2 level.
#define PFN_ISA_LEVEL 1
#define PFN_ISA_NS avx2
#include "cpu/elementwise/elementwise_impl.h"

namespace pyfastnn {
namespace cpu {

void elementwise_kernels_avx2(ElementwiseKernels<float>* f32, ElementwiseKernels<double>* f64) {
  *f32 = avx2::make_elementwise_kernels<float>();
  *f64 = avx2::make_elementwise_kernels<double>();
}

}  // namespace cpu
}  // namespace pyfastnn
