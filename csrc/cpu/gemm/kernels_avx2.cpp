// GEMM kernel set, AVX2+FMA: 6x16 (fp32) and 6x8 (fp64) tiles, 12 of the 16 ymm registers as accumulators.
#define PFN_ISA_LEVEL 1
#define PFN_ISA_NS avx2
#include "cpu/gemm/kernel_set.h"
#include "cpu/gemm/kernels.h"

namespace pyfastnn {
namespace cpu {

void gemm_kernels_avx2(GemmKernelSet<float>* f32, GemmKernelSet<double>* f64) {
  *f32 = avx2::make_gemm_kernel_set<float, 6, 2>();
  *f64 = avx2::make_gemm_kernel_set<double, 6, 2>();
}

}  // namespace cpu
}  // namespace pyfastnn
