// GEMV-shaped products: C (m x n) = act(A (m x k) · Wᵀ + bias) for a few rows
// of A (m <= kGemvMaxRows) against W (n x k) whose rows are contiguous — a
// Linear layer's weight, as a decode step multiplies one token by it. The
// GEMM would pack all of W for a single row of A (W read, written and read
// again); here every row of W is streamed once, straight from memory, and
// dotted with the m rows of A held in cache (BLIS's dot-based gemv,
// bli_gemv_unf_var1). Threads split the rows of W, so each output element
// is one thread's dot product and results do not depend on the thread count.
#pragma once
#include <cstddef>
#include <cstdint>

#include "common/activation.h"
#include "runtime/cpu_info.h"

namespace pyfastnn {
namespace cpu {

// Rows of A one pass over W serves; more rows go to the GEMM, which packs W
// once for all of them.
constexpr std::int64_t kGemvMaxRows = 4;

template <class T>
struct GemvKernels {
  // c[i * ldc + j] = dot(a[i * lda : +k], w[j * ldw : +k]) for i < m, j in
  // [j0, j1); m in [1, kGemvMaxRows], rows of a and w contiguous.
  void (*dots)(std::int64_t m, std::int64_t k, const T* a, std::ptrdiff_t lda, const T* w, std::ptrdiff_t ldw,
               std::int64_t j0, std::int64_t j1, T* c, std::ptrdiff_t ldc);
  // c[j0:j1] = act(c[j0:j1] + bias[j0:j1]) (bias may be null).
  void (*epilogue)(T* c, const T* bias, std::int64_t j0, std::int64_t j1, Activation act);
};

template <class T>
const GemvKernels<T>& gemv_kernels(CpuIsa isa);

void gemv_kernels_scalar(GemvKernels<float>* f32, GemvKernels<double>* f64);
void gemv_kernels_avx2(GemvKernels<float>* f32, GemvKernels<double>* f64);
void gemv_kernels_avx512(GemvKernels<float>* f32, GemvKernels<double>* f64);

// The threaded product: m rows of A (row stride lda), W (n x k, row stride
// ldw), C (m x n, row stride ldc), bias (n,) or null; on the library's pool.
template <class T>
void gemv(std::int64_t m, std::int64_t n, std::int64_t k, const T* a, std::ptrdiff_t lda, const T* w,
          std::ptrdiff_t ldw, T* c, std::ptrdiff_t ldc, const T* bias, Activation act);

}  // namespace cpu
}  // namespace pyfastnn
