// GEMM kernel set, portable fallback: 4x4 tiles of plain scalars.
#define PFN_ISA_LEVEL 0
#define PFN_ISA_NS scalar
#include "cpu/gemm/kernel_set.h"
#include "cpu/gemm/kernels.h"

namespace pyfastnn {
namespace cpu {

void gemm_kernels_scalar(GemmKernelSet<float>* f32, GemmKernelSet<double>* f64) {
  *f32 = scalar::make_gemm_kernel_set<float, 4, 4>();
  *f64 = scalar::make_gemm_kernel_set<double, 4, 4>();
}

}  // namespace cpu
}  // namespace pyfastnn
