// Optimizer step kernels compiled for the avx2 level.
#define PFN_ISA_LEVEL 1
#define PFN_ISA_NS avx2
#include "cpu/optim/optim_impl.h"

namespace pyfastnn {
namespace cpu {

void optim_kernels_avx2(OptimKernels<float>* f32, OptimKernels<double>* f64) {
  *f32 = avx2::make_optim_kernels<float>();
  *f64 = avx2::make_optim_kernels<double>();
}

}  // namespace cpu
}  // namespace pyfastnn
