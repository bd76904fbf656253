// Row-wise kernels (softmax, layer norm, cross-entropy) for the avx512 level.
#define PFN_ISA_LEVEL 2
#define PFN_ISA_NS avx512
#include "cpu/rowwise/rowwise_impl.h"

namespace pyfastnn {
namespace cpu {

void rowwise_kernels_avx512(RowwiseKernels<float>* f32, RowwiseKernels<double>* f64) {
  *f32 = avx512::make_rowwise_kernels<float>();
  *f64 = avx512::make_rowwise_kernels<double>();
}

}  // namespace cpu
}  // namespace pyfastnn
