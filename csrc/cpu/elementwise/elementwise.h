// Elementwise kernels per ISA level (the same math as the GEMM epilogue).
#pragma once
#include <cstdint>

#include "common/activation.h"
#include "runtime/cpu_info.h"

namespace pyfastnn {
namespace cpu {

template <class T>
struct ElementwiseKernels {
  // y[r, :] = act(y[r, :] + bias) for r in [0, rows), in place, row-major.
  void (*bias_activation_rows)(T* y, const T* bias, std::int64_t rows, std::int64_t cols, Activation act);
  // Sum of x[0:n] with several vector accumulators (a fixed order, so the
  // result does not depend on threads or alignment).
  T (*sum)(const T* x, std::int64_t n);
  // y = act(x) over n elements (act != none).
  void (*activation)(const T* x, T* y, std::int64_t n, Activation act);
  // gx = g * act'(.), where saved is y for sigmoid and tanh, x for the others.
  void (*activation_backward)(const T* g, const T* saved, T* gx, std::int64_t n, Activation act);
  // y[0:n] += x[0:n] (the row adds of the scatter-adds: embedding backward, scatter_add).
  void (*add)(T* y, const T* x, std::int64_t n);
};

template <class T>
const ElementwiseKernels<T>& elementwise_kernels(CpuIsa isa);

void elementwise_kernels_scalar(ElementwiseKernels<float>* f32, ElementwiseKernels<double>* f64);
void elementwise_kernels_avx2(ElementwiseKernels<float>* f32, ElementwiseKernels<double>* f64);
void elementwise_kernels_avx512(ElementwiseKernels<float>* f32, ElementwiseKernels<double>* f64);

}  // namespace cpu
}  // namespace pyfastnn
