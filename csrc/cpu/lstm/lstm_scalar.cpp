// LSTM cell kernels for the scalar level.
#define PFN_ISA_LEVEL 0
#define PFN_ISA_NS scalar
#include "cpu/lstm/lstm_impl.h"

namespace pyfastnn {
namespace cpu {

void lstm_kernels_scalar(LstmKernels<float>* f32, LstmKernels<double>* f64) {
  *f32 = scalar::make_lstm_kernels<float>();
  *f64 = scalar::make_lstm_kernels<double>();
}

}  // namespace cpu
}  // namespace pyfastnn
