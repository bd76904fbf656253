// Group-norm kernels compiled for the avx512 level.
#define PFN_ISA_LEVEL 2
#define PFN_ISA_NS avx512
#include "cpu/norm/norm_impl.h"

namespace pyfastnn {
namespace cpu {

void norm_kernels_avx512(NormKernels<float>* f32, NormKernels<double>* f64) {
  *f32 = avx512::make_norm_kernels<float>();
  *f64 = avx512::make_norm_kernels<double>();
}

}  // namespace cpu
}  // namespace pyfastnn
