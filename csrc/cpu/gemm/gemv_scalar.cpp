// GEMV kernels compiled for the scalar level.
#define PFN_ISA_LEVEL 0
#define PFN_ISA_NS scalar
#include "cpu/gemm/gemv_impl.h"

namespace pyfastnn {
namespace cpu {

void gemv_kernels_scalar(GemvKernels<float>* f32, GemvKernels<double>* f64) {
  *f32 = scalar::make_gemv_kernels<float>();
  *f64 = scalar::make_gemv_kernels<double>();
}

}  // namespace cpu
}  // namespace pyfastnn
