// Sort-key kernels compiled for the avx512 level.
#define PFN_ISA_LEVEL 2
#define PFN_ISA_NS avx512
#include "cpu/sort/sort_impl.h"

namespace pyfastnn {
namespace cpu {

void sort_kernels_avx512(SortKernels<float>* f32, SortKernels<double>* f64) {
  *f32 = avx512::make_sort_kernels<float>();
  *f64 = avx512::make_sort_kernels<double>();
}

}  // namespace cpu
}  // namespace pyfastnn
