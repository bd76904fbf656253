// Scan kernels compiled for the avx512 level.
#define PFN_ISA_LEVEL 2
#define PFN_ISA_NS avx512
#include "cpu/scan/scan_impl.h"

namespace pyfastnn {
namespace cpu {

void scan_kernels_avx512(ScanKernels<float>* f32, ScanKernels<double>* f64) {
  *f32 = avx512::make_scan_kernels<float>();
  *f64 = avx512::make_scan_kernels<double>();
}

}  // namespace cpu
}  // namespace pyfastnn
