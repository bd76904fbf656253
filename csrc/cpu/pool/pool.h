// 2-D max and average pooling over NCHW planes, PyTorch semantics: padding
// counts as -inf for max and as zeros (included in the divisor) for average;
// max indices are flat positions iy*W + ix in the input plane (int64).
#pragma once
#include <cstdint>

#include "runtime/cpu_info.h"

namespace pyfastnn {
namespace cpu {

struct PoolGeometry {
  std::int64_t planes, H, W, KH, KW, SH, SW, PH, PW, OH, OW;
};

// 1 / (KH * KW), the average's divisor (padding counted), without forming
// the int64 product (kernel sizes may be any int64). The window area is
// exact in double below 2**53, so this rounds like T(KH * KW) did.
template <class T>
inline T avg_scale(const PoolGeometry& g) {
  return T(1) / static_cast<T>(static_cast<double>(g.KH) * static_cast<double>(g.KW));
}

template <class T>
struct PoolKernels {
  // Each call handles planes [p0, p1) of contiguous input/output planes.
  void (*max_forward)(const PoolGeometry& g, const T* x, T* y, std::int64_t* idx, std::int64_t p0, std::int64_t p1);
  void (*avg_forward)(const PoolGeometry& g, const T* x, T* y, std::int64_t p0, std::int64_t p1);
  // y[p] = mean of the n elements of plane p, p in [p0, p1) (global average pooling).
  void (*mean_planes)(const T* x, std::int64_t n, T* y, std::int64_t p0, std::int64_t p1);
};

template <class T>
const PoolKernels<T>& pool_kernels(CpuIsa isa);
void pool_kernels_scalar(PoolKernels<float>* f32, PoolKernels<double>* f64);
void pool_kernels_avx2(PoolKernels<float>* f32, PoolKernels<double>* f64);
void pool_kernels_avx512(PoolKernels<float>* f32, PoolKernels<double>* f64);

// Threaded drivers (planes split over the pool).
template <class T>
void max_pool2d_forward(const PoolGeometry& g, const T* x, T* y, std::int64_t* idx, int nthreads);
template <class T>
void avg_pool2d_forward(const PoolGeometry& g, const T* x, T* y, int nthreads);
// Returns false (and leaves gx unspecified) if an index is outside its plane.
template <class T>
bool max_pool2d_backward(const PoolGeometry& g, const T* gy, const std::int64_t* idx, T* gx, int nthreads);
template <class T>
void avg_pool2d_backward(const PoolGeometry& g, const T* gy, T* gx, int nthreads);

// Adaptive pooling to g.OH x g.OW with torch's bins: output row i covers input
// rows [floor(i*H/OH), ceil((i+1)*H/OH)), the same for columns (bins may
// overlap); K*, S*, P* are unused. Max follows torch's rule (a strictly larger
// value or any NaN takes the bin: the last NaN wins); its backward pass is
// max_pool2d_backward. A 1x1 output is one vectorised sum per plane.
template <class T>
void adaptive_avg_pool2d_forward(const PoolGeometry& g, const T* x, T* y, int nthreads);
template <class T>
void adaptive_max_pool2d_forward(const PoolGeometry& g, const T* x, T* y, std::int64_t* idx, int nthreads);
template <class T>
void adaptive_avg_pool2d_backward(const PoolGeometry& g, const T* gy, T* gx, int nthreads);

}  // namespace cpu
}  // namespace pyfastnn
