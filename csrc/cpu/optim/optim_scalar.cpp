// Optimizer step kernels compiled for the scalar level.
#define PFN_ISA_LEVEL 0
#define PFN_ISA_NS scalar
#include "cpu/optim/optim_impl.h"

namespace pyfastnn {
namespace cpu {

void optim_kernels_scalar(OptimKernels<float>* f32, OptimKernels<double>* f64) {
  *f32 = scalar::make_optim_kernels<float>();
  *f64 = scalar::make_optim_kernels<double>();
}

}  // namespace cpu
}  // namespace pyfastnn
