// GEMV kernels compiled for the avx2 level.
#define PFN_ISA_LEVEL 1
#define PFN_ISA_NS avx2
#include "cpu/gemm/gemv_impl.h"

namespace pyfastnn {
namespace cpu {

void gemv_kernels_avx2(GemvKernels<float>* f32, GemvKernels<double>* f64) {
  *f32 = avx2::make_gemv_kernels<float>();
  *f64 = avx2::make_gemv_kernels<double>();
}

}  // namespace cpu
}  // namespace pyfastnn
