// LSTM cell kernels for the avx512 level.
#define PFN_ISA_LEVEL 2
#define PFN_ISA_NS avx512
#include "cpu/lstm/lstm_impl.h"

namespace pyfastnn {
namespace cpu {

void lstm_kernels_avx512(LstmKernels<float>* f32, LstmKernels<double>* f64) {
  *f32 = avx512::make_lstm_kernels<float>();
  *f64 = avx512::make_lstm_kernels<double>();
}

}  // namespace cpu
}  // namespace pyfastnn
