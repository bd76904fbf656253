// Group-norm kernels compiled for the avx2 level.
#define PFN_ISA_LEVEL 1
#define PFN_ISA_NS avx2
#include "cpu/norm/norm_impl.h"

namespace pyfastnn {
namespace cpu {

void norm_kernels_avx2(NormKernels<float>* f32, NormKernels<double>* f64) {
  *f32 = avx2::make_norm_kernels<float>();
  *f64 = avx2::make_norm_kernels<double>();
}

}  // namespace cpu
}  // namespace pyfastnn
