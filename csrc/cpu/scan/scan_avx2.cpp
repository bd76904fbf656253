// Scan kernels compiled for the avx2 level.
#define PFN_ISA_LEVEL 1
#define PFN_ISA_NS avx2
#include "cpu/scan/scan_impl.h"

namespace pyfastnn {
namespace cpu {

void scan_kernels_avx2(ScanKernels<float>* f32, ScanKernels<double>* f64) {
  *f32 = avx2::make_scan_kernels<float>();
  *f64 = avx2::make_scan_kernels<double>();
}

}  // namespace cpu
}  // namespace pyfastnn
