// GEMM kernel set, AVX-512: 8x48 (fp32) and 8x24 (fp64) tiles, 24 of the 32 zmm registers as accumulators.
#define PFN_ISA_LEVEL 2
#define PFN_ISA_NS avx512
#include "cpu/gemm/kernel_set.h"
#include "cpu/gemm/kernels.h"

#ifndef PFN_AVX512_F32_TILE
#define PFN_AVX512_F32_TILE 8, 3
#endif

namespace pyfastnn {
namespace cpu {

void gemm_kernels_avx512(GemmKernelSet<float>* f32, GemmKernelSet<double>* f64) {
  *f32 = avx512::make_gemm_kernel_set<float, PFN_AVX512_F32_TILE>();
  *f64 = avx512::make_gemm_kernel_set<double, 8, 3>();
}

}  // namespace cpu
}  // namespace pyfastnn
