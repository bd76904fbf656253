// GEMV kernels compiled for the avx512 level.
#define PFN_ISA_LEVEL 2
#define PFN_ISA_NS avx512
#include "cpu/gemm/gemv_impl.h"

namespace pyfastnn {
namespace cpu {

void gemv_kernels_avx512(GemvKernels<float>* f32, GemvKernels<double>* f64) {
  *f32 = avx512::make_gemv_kernels<float>();
  *f64 = avx512::make_gemv_kernels<double>();
}

}  // namespace cpu
}  // namespace pyfastnn
