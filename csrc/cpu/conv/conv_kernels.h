// Convolution kernels compiled per ISA level (the GEMM does the rest).
#pragma once
#include <cstdint>

#include "cpu/conv/conv_geometry.h"
#include "runtime/cpu_info.h"

namespace pyfastnn {
namespace cpu {

template <class T>
struct ConvKernels {
  int lanes_ahead;  // elements the direct kernel may read past a row's last output
  void (*direct_small_k)(const ConvGeometry& g, std::int64_t Wp, const T* xpad, std::int64_t x_stride,
                         std::int64_t images, const std::int64_t* row_offset, const T* w, const T* bias, T* y,
                         std::int64_t y_stride);
  void (*direct_small_k_weight_grad)(const ConvGeometry& g, std::int64_t Wp, const T* xpad,
                                     const std::int64_t* row_offset, const T* gy, T* gw);
  // Stride-1 unfold of output pixels p0 .. p0+pc into col (K x pc), and its
  // adjoint (accumulating into the padded image); see unfold.h.
  void (*unfold_stride1)(std::int64_t K, std::int64_t pc, const T* xpad, const std::int64_t* row_offset,
                         std::int64_t wp, std::int64_t ow, std::int64_t p0, T* col, std::int64_t ld);
  void (*fold_stride1_add)(std::int64_t K, std::int64_t pc, const T* col, std::int64_t ld, T* xpad,
                           const std::int64_t* row_offset, std::int64_t wp, std::int64_t ow, std::int64_t p0);
  // > 0: on output rows at least this wide direct_small_k runs the flat-run
  // kernel, whose masked loads touch nothing outside the image, so an
  // unpadded x is read in place (no copy, no slack).
  std::int64_t flat_min_ow = 0;
};

template <class T>
const ConvKernels<T>& conv_kernels(CpuIsa isa);
void conv_kernels_scalar(ConvKernels<float>* f32, ConvKernels<double>* f64);
void conv_kernels_avx2(ConvKernels<float>* f32, ConvKernels<double>* f64);
void conv_kernels_avx512(ConvKernels<float>* f32, ConvKernels<double>* f64);

}  // namespace cpu
}  // namespace pyfastnn
