// Scan kernels compiled for the scalar level.
#define PFN_ISA_LEVEL 0
#define PFN_ISA_NS scalar
#include "cpu/scan/scan_impl.h"

namespace pyfastnn {
namespace cpu {

void scan_kernels_scalar(ScanKernels<float>* f32, ScanKernels<double>* f64) {
  *f32 = scalar::make_scan_kernels<float>();
  *f64 = scalar::make_scan_kernels<double>();
}

}  // namespace cpu
}  // namespace pyfastnn
