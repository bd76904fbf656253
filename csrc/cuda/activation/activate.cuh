// The epilogue activations on the GPU, shared by bias_act and the GEMMs: the
// same formulas as the CPU kernels, so CUDA and CPU results differ only by
// rounding. relu keeps NaN; gelu is the exact erf form written with erfc so
// its left tail does not cancel to 0. Codes as pyfastnn::Activation:
// 0 none, 1 relu, 2 gelu, 3 sigmoid, 4 tanh.
#pragma once

namespace pyfastnn {
namespace cuda {

__device__ __forceinline__ float activate(float v, int act) {
  switch (act) {
    case 1: return v > 0.f || v != v ? v : 0.f;
    case 2: return 0.5f * v * erfcf(-v * 0.70710678118654752f);
    case 3: return 1.f / (1.f + expf(-v));
    case 4: return tanhf(v);
    default: return v;
  }
}

}  // namespace cuda
}  // namespace pyfastnn
