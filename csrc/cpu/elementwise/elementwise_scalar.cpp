// Elementwise kernels compiled for the scalar level.
#define PFN_ISA_LEVEL 0
#define PFN_ISA_NS scalar
#include "cpu/elementwise/elementwise_impl.h"

namespace pyfastnn {
namespace cpu {

void elementwise_kernels_scalar(ElementwiseKernels<float>* f32, ElementwiseKernels<double>* f64) {
  *f32 = scalar::make_elementwise_kernels<float>();
  *f64 = scalar::make_elementwise_kernels<double>();
}

}  // namespace cpu
}  // namespace pyfastnn
