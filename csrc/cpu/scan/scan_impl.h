// Templates behind ScanKernels; included once per ISA translation unit.
#pragma once
#include "cpu/scan/scan.h"

namespace pyfastnn {
namespace cpu {
namespace PFN_ISA_NS {

// A row in blocks of 8: the prefix sums inside a block do not depend on the
// previous blocks, so they overlap; only the carry (one add per block) is a
// serial chain. reference: acc = 0; for (i < n) { acc += x[i]; y[i] = acc; }
template <class T>
void row(const T* x, T* y, std::int64_t n, bool reverse) {
  constexpr int B = 8;
  double carry = 0;
  if (!reverse) {
    std::int64_t i = 0;
    for (; i + B <= n; i += B) {
      double p[B];
      p[0] = static_cast<double>(x[i]);
      for (int j = 1; j < B; ++j) p[j] = p[j - 1] + static_cast<double>(x[i + j]);
      for (int j = 0; j < B; ++j) y[i + j] = static_cast<T>(carry + p[j]);
      carry += p[B - 1];
    }
    for (; i < n; ++i) {
      carry += static_cast<double>(x[i]);
      y[i] = static_cast<T>(carry);
    }
  } else {
    std::int64_t i = n;
    for (; i - B >= 0; i -= B) {
      double p[B];
      p[0] = static_cast<double>(x[i - 1]);
      for (int j = 1; j < B; ++j) p[j] = p[j - 1] + static_cast<double>(x[i - 1 - j]);
      for (int j = 0; j < B; ++j) y[i - 1 - j] = static_cast<T>(carry + p[j]);
      carry += p[B - 1];
    }
    for (; i > 0; --i) {
      carry += static_cast<double>(x[i - 1]);
      y[i - 1] = static_cast<T>(carry);
    }
  }
}

// Columns side by side, one double accumulator each (the loops vectorise).
template <class T>
void lines(const T* x, T* y, std::int64_t L, std::int64_t cols, std::int64_t ld, bool reverse) {
  double acc[kScanColumns];
  for (std::int64_t j = 0; j < cols; ++j) acc[j] = 0;
  for (std::int64_t s = 0; s < L; ++s) {
    const std::int64_t l = reverse ? L - 1 - s : s;
    const T* xr = x + l * ld;
    T* yr = y + l * ld;
    for (std::int64_t j = 0; j < cols; ++j) {
      acc[j] += static_cast<double>(xr[j]);
      yr[j] = static_cast<T>(acc[j]);
    }
  }
}

template <class T>
ScanKernels<T> make_scan_kernels() {
  return ScanKernels<T>{&row<T>, &lines<T>};
}

}  // namespace PFN_ISA_NS
}  // namespace cpu
}  // namespace pyfastnn
