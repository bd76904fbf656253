// Pooling kernels for the avx2 level: the generic loops.
#define PFN_ISA_LEVEL 1
#define PFN_ISA_NS avx2
#include "cpu/pool/pool_impl.h"

namespace pyfastnn {
namespace cpu {

void pool_kernels_avx2(PoolKernels<float>* f32, PoolKernels<double>* f64) {
  *f32 = PoolKernels<float>{&avx2::max_forward_generic<float>, &avx2::avg_forward_generic<float>,
                              &avx2::mean_planes<float>};
  *f64 = PoolKernels<double>{&avx2::max_forward_generic<double>, &avx2::avg_forward_generic<double>,
                               &avx2::mean_planes<double>};
}

}  // namespace cpu
}  // namespace pyfastnn
