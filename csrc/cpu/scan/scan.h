// Prefix sums (cumsum, and the reversed one its backward pass needs) along
// one dim of a contiguous (outer, L, inner) array. Floats accumulate in double
// like torch's CPU cumsum, int64 wraps around; each line is summed by one
// thread in a fixed order, so results do not depend on the thread count.
#pragma once
#include <cstdint>

#include "runtime/cpu_info.h"

namespace pyfastnn {
namespace cpu {

// Columns of an (L, inner) block one lines() call carries (its double accumulators).
constexpr std::int64_t kScanColumns = 256;

template <class T>
struct ScanKernels {
  // y[i] = x[0] + ... + x[i] over a contiguous row (reverse: x[i] + ... + x[n-1]).
  void (*row)(const T* x, T* y, std::int64_t n, bool reverse);
  // The same down the L rows of an (L, cols) block with row stride ld, cols <= kScanColumns.
  void (*lines)(const T* x, T* y, std::int64_t L, std::int64_t cols, std::int64_t ld, bool reverse);
};

template <class T>
const ScanKernels<T>& scan_kernels(CpuIsa isa);
void scan_kernels_scalar(ScanKernels<float>* f32, ScanKernels<double>* f64);
void scan_kernels_avx2(ScanKernels<float>* f32, ScanKernels<double>* f64);
void scan_kernels_avx512(ScanKernels<float>* f32, ScanKernels<double>* f64);

// y = cumsum of x along the middle dim of (outer, L, inner); T float, double or int64.
template <class T>
void cumsum(const T* x, T* y, std::int64_t outer, std::int64_t L, std::int64_t inner, bool reverse);

}  // namespace cpu
}  // namespace pyfastnn
