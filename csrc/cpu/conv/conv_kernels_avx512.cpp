// Convolution kernels for the avx512 level.
#define PFN_ISA_LEVEL 2
#define PFN_ISA_NS avx512
#include "cpu/conv/conv_kernels.h"
#include "cpu/conv/direct_small_k.h"
#include "cpu/conv/unfold.h"

namespace pyfastnn {
namespace cpu {

void conv_kernels_avx512(ConvKernels<float>* f32, ConvKernels<double>* f64) {
  *f32 = ConvKernels<float>{2 * avx512::Vec<float>::size, &avx512::conv_direct_small_k<float>,
                                 &avx512::conv_direct_small_k_weight_grad<float>,
                                 &avx512::unfold_stride1<float>, &avx512::fold_stride1_add<float>,
                                 avx512::Vec<float>::size};
  *f64 = ConvKernels<double>{2 * avx512::Vec<double>::size, &avx512::conv_direct_small_k<double>,
                                 &avx512::conv_direct_small_k_weight_grad<double>,
                                 &avx512::unfold_stride1<double>, &avx512::fold_stride1_add<double>};
}

}  // namespace cpu
}  // namespace pyfastnn
