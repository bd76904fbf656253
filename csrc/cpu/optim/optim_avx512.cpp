// Optimizer step kernels compiled for the avx512 level.
#define PFN_ISA_LEVEL 2
#define PFN_ISA_NS avx512
#include "cpu/optim/optim_impl.h"

namespace pyfastnn {
namespace cpu {

void optim_kernels_avx512(OptimKernels<float>* f32, OptimKernels<double>* f64) {
  *f32 = avx512::make_optim_kernels<float>();
  *f64 = avx512::make_optim_kernels<double>();
}

}  // namespace cpu
}  // namespace pyfastnn
