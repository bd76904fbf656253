// Convolution kernels for the scalar level.
#define PFN_ISA_LEVEL 0
#define PFN_ISA_NS scalar
#include "cpu/conv/conv_kernels.h"
#include "cpu/conv/direct_small_k.h"
#include "cpu/conv/unfold.h"

namespace pyfastnn {
namespace cpu {

void conv_kernels_scalar(ConvKernels<float>* f32, ConvKernels<double>* f64) {
  *f32 = ConvKernels<float>{2 * scalar::Vec<float>::size, &scalar::conv_direct_small_k<float>,
                                 &scalar::conv_direct_small_k_weight_grad<float>,
                                 &scalar::unfold_stride1<float>, &scalar::fold_stride1_add<float>};
  *f64 = ConvKernels<double>{2 * scalar::Vec<double>::size, &scalar::conv_direct_small_k<double>,
                                 &scalar::conv_direct_small_k_weight_grad<double>,
                                 &scalar::unfold_stride1<double>, &scalar::fold_stride1_add<double>};
}

}  // namespace cpu
}  // namespace pyfastnn
