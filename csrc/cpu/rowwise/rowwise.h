// Row-wise kernels over a (rows x n) row-major matrix: softmax and
// log_softmax, layer norm, and cross-entropy (log-softmax + NLL fused), with
// their backward passes. Compiled per ISA level.
#pragma once
#include <cstdint>

#include "runtime/cpu_info.h"

namespace pyfastnn {
namespace cpu {

template <class T>
struct RowwiseKernels {
  // y = softmax(x) (or log_softmax) along each row.
  void (*softmax)(const T* x, T* y, std::int64_t rows, std::int64_t n, bool log);
  // gx = y * (g - sum(g*y))  (softmax),  g - exp(y) * sum(g)  (log_softmax).
  void (*softmax_backward)(const T* g, const T* y, T* gx, std::int64_t rows, std::int64_t n, bool log);
  // y = (x - mean) * rstd * w + b per row; mean/rstd saved per row (w, b may be null).
  void (*layer_norm)(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, std::int64_t rows,
                     std::int64_t n, double eps);
  // gx for the rows; gw/gb (length n, may be null) accumulate sum(g * xhat) and sum(g).
  void (*layer_norm_backward)(const T* g, const T* x, const T* mean, const T* rstd, const T* w, T* gx, T* gw,
                              T* gb, std::int64_t rows, std::int64_t n);
  // Per row: loss = (1-s) * (lse - x[t]) + s * (lse - mean(x)); rows whose
  // target is `ignore` get loss 0 (and grad 0). With grad: grad = scale *
  // (softmax(x) - (1-s) * onehot(t) - s / n). Returns the sum of the losses.
  double (*cross_entropy)(const T* logits, const std::int64_t* target, std::int64_t rows, std::int64_t n,
                          std::int64_t ignore, double smoothing, T* grad, double scale);
  // Online-softmax step of attention over a tile S (rows x n, row stride ld):
  // m_new = max(m, max S_r); S_r <- exp(S_r - m_new); l = l * alpha + sum S_r
  // with alpha = exp(m - m_new) written to alpha[r]; m <- m_new. Rows still
  // at -inf (all masked so far) keep S_r = 0, alpha = 1.
  void (*online_softmax)(T* S, std::int64_t ld, std::int64_t rows, std::int64_t n, T* m, T* l, T* alpha);
  // S_r <- exp(S_r - lse_r) (0 where lse_r is -inf): attention's P from its saved log-sum-exp.
  void (*exp_minus)(T* S, std::int64_t ld, std::int64_t rows, std::int64_t n, const T* lse);
};

template <class T>
const RowwiseKernels<T>& rowwise_kernels(CpuIsa isa);
void rowwise_kernels_scalar(RowwiseKernels<float>* f32, RowwiseKernels<double>* f64);
void rowwise_kernels_avx2(RowwiseKernels<float>* f32, RowwiseKernels<double>* f64);
void rowwise_kernels_avx512(RowwiseKernels<float>* f32, RowwiseKernels<double>* f64);

}  // namespace cpu
}  // namespace pyfastnn
