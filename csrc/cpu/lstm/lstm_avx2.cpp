// LSTM cell kernels for the avx2 level.
#define PFN_ISA_LEVEL 1
#define PFN_ISA_NS avx2
#include "cpu/lstm/lstm_impl.h"

namespace pyfastnn {
namespace cpu {

void lstm_kernels_avx2(LstmKernels<float>* f32, LstmKernels<double>* f64) {
  *f32 = avx2::make_lstm_kernels<float>();
  *f64 = avx2::make_lstm_kernels<double>();
}

}  // namespace cpu
}  // namespace pyfastnn
