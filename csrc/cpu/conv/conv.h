// 2-D convolution on the CPU as GEMMs: the forward pass packs the unfolded
// input straight into the GEMM's B slivers (implicit GEMM, no im2col
// buffer); the backward pass unfolds bounded chunks of output pixels at a
// time. All tensors contiguous: x NCHW, w OIHW, y NCHW.
#pragma once
#include "cpu/conv/conv_geometry.h"

namespace pyfastnn {
namespace cpu {

template <class T>
void conv2d_forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y, int nthreads);

// Any of gx, gw, gb may be null (not wanted). gx and gw are overwritten.
template <class T>
void conv2d_backward(const ConvGeometry& g, const T* gy, const T* x, const T* w, T* gx, T* gw, T* gb,
                     int nthreads);

}  // namespace cpu
}  // namespace pyfastnn
