// Convolution kernels for the avx2 level.
#define PFN_ISA_LEVEL 1
#define PFN_ISA_NS avx2
#include "cpu/conv/conv_kernels.h"
#include "cpu/conv/direct_small_k.h"
#include "cpu/conv/unfold.h"

namespace pyfastnn {
namespace cpu {

void conv_kernels_avx2(ConvKernels<float>* f32, ConvKernels<double>* f64) {
  *f32 = ConvKernels<float>{2 * avx2::Vec<float>::size, &avx2::conv_direct_small_k<float>,
                                 &avx2::conv_direct_small_k_weight_grad<float>,
                                 &avx2::unfold_stride1<float>, &avx2::fold_stride1_add<float>};
  *f64 = ConvKernels<double>{2 * avx2::Vec<double>::size, &avx2::conv_direct_small_k<double>,
                                 &avx2::conv_direct_small_k_weight_grad<double>,
                                 &avx2::unfold_stride1<double>, &avx2::fold_stride1_add<double>};
}

}  // namespace cpu
}  // namespace pyfastnn
