// Pooling kernels for the scalar level: the generic loops.
#define PFN_ISA_LEVEL 0
#define PFN_ISA_NS scalar
#include "cpu/pool/pool_impl.h"

namespace pyfastnn {
namespace cpu {

void pool_kernels_scalar(PoolKernels<float>* f32, PoolKernels<double>* f64) {
  *f32 = PoolKernels<float>{&scalar::max_forward_generic<float>, &scalar::avg_forward_generic<float>,
                              &scalar::mean_planes<float>};
  *f64 = PoolKernels<double>{&scalar::max_forward_generic<double>, &scalar::avg_forward_generic<double>,
                               &scalar::mean_planes<double>};
}

}  // namespace cpu
}  // namespace pyfastnn
