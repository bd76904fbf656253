// Sort-key kernels compiled for the avx2 level.
#define PFN_ISA_LEVEL 1
#define PFN_ISA_NS avx2
#include "cpu/sort/sort_impl.h"

namespace pyfastnn {
namespace cpu {

void sort_kernels_avx2(SortKernels<float>* f32, SortKernels<double>* f64) {
  *f32 = avx2::make_sort_kernels<float>();
  *f64 = avx2::make_sort_kernels<double>();
}

}  // namespace cpu
}  // namespace pyfastnn
