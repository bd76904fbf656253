// Sort-key kernels compiled for the scalar level.
#define PFN_ISA_LEVEL 0
#define PFN_ISA_NS scalar
#include "cpu/sort/sort_impl.h"

namespace pyfastnn {
namespace cpu {

void sort_kernels_scalar(SortKernels<float>* f32, SortKernels<double>* f64) {
  *f32 = scalar::make_sort_kernels<float>();
  *f64 = scalar::make_sort_kernels<double>();
}

}  // namespace cpu
}  // namespace pyfastnn
