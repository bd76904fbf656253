// Row-wise kernels (softmax, layer norm, cross-entropy) for the scalar level.
#define PFN_ISA_LEVEL 0
#define PFN_ISA_NS scalar
#include "cpu/rowwise/rowwise_impl.h"

namespace pyfastnn {
namespace cpu {

void rowwise_kernels_scalar(RowwiseKernels<float>* f32, RowwiseKernels<double>* f64) {
  *f32 = scalar::make_rowwise_kernels<float>();
  *f64 = scalar::make_rowwise_kernels<double>();
}

}  // namespace cpu
}  // namespace pyfastnn
