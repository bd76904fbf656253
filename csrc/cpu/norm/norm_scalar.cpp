// Group-norm kernels compiled for the scalar level.
#define PFN_ISA_LEVEL 0
#define PFN_ISA_NS scalar
#include "cpu/norm/norm_impl.h"

namespace pyfastnn {
namespace cpu {

void norm_kernels_scalar(NormKernels<float>* f32, NormKernels<double>* f64) {
  *f32 = scalar::make_norm_kernels<float>();
  *f64 = scalar::make_norm_kernels<double>();
}

}  // namespace cpu
}  // namespace pyfastnn
