// Row-wise kernels (softmax, layer norm, cross-entropy) for the avx2 level.
#define PFN_ISA_LEVEL 1
#define PFN_ISA_NS avx2
#include "cpu/rowwise/rowwise_impl.h"

namespace pyfastnn {
namespace cpu {

void rowwise_kernels_avx2(RowwiseKernels<float>* f32, RowwiseKernels<double>* f64) {
  *f32 = avx2::make_rowwise_kernels<float>();
  *f64 = avx2::make_rowwise_kernels<double>();
}

}  // namespace cpu
}  // namespace pyfastnn
