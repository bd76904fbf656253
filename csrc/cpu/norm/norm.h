// Group normalization over NC* inputs (torch.native_group_norm and its
// backward pass). The per-ISA kernels work on one contiguous span of at most
// kNormChunk elements; the drivers cut every reduction into such chunks at
// fixed offsets and add the chunk sums in double, in order, so the statistics
// and gradients are the same bits whatever the thread count.
#pragma once
#include <cstdint>

#include "runtime/cpu_info.h"

namespace pyfastnn {
namespace cpu {

constexpr std::int64_t kNormChunk = 4096;

template <class T>
struct NormKernels {
  // sum(x[0:n]) in vector accumulators of T, returned as double.
  double (*sum)(const T* x, std::int64_t n);
  // sum((x - mean)^2).
  double (*sum_sq_dev)(const T* x, std::int64_t n, T mean);
  // y = x * scale + shift.
  void (*scale_shift)(const T* x, T* y, std::int64_t n, T scale, T shift);
  // *sum_g = sum(g), *sum_gd = sum(g * (x - mean)).
  void (*grad_sums)(const T* g, const T* x, std::int64_t n, T mean, double* sum_g, double* sum_gd);
  // gx = a * g + b * (x - mean) + c.
  void (*grad_apply)(const T* g, const T* x, T* gx, std::int64_t n, T a, T b, T mean, T c);
};

template <class T>
const NormKernels<T>& norm_kernels(CpuIsa isa);
void norm_kernels_scalar(NormKernels<float>* f32, NormKernels<double>* f64);
void norm_kernels_avx2(NormKernels<float>* f32, NormKernels<double>* f64);
void norm_kernels_avx512(NormKernels<float>* f32, NormKernels<double>* f64);

// x (N, C, HW) contiguous, G groups of C/G channels: mean, rstd (N, G) and
// y = (x - mean) * rstd * w[c] + b[c] (w, b may be null). var is the biased
// variance, from a second pass over (x - mean).
template <class T>
void group_norm_forward(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, std::int64_t N, std::int64_t C,
                        std::int64_t HW, std::int64_t G, double eps);

// gx, and gw, gb (C,) = the gradients a weight and a bias would get (w may be null).
template <class T>
void group_norm_backward(const T* g, const T* x, const T* mean, const T* rstd, const T* w, T* gx, T* gw, T* gb,
                         std::int64_t N, std::int64_t C, std::int64_t HW, std::int64_t G);

}  // namespace cpu
}  // namespace pyfastnn
