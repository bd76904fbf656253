// cumsum driver and the scan kernel table: rows (inner == 1) or blocks of
// kScanColumns columns (inner > 1) split over the pool, one line per thread.
#include "cpu/scan/scan.h"

#include <algorithm>
#include <type_traits>

#include "runtime/dispatch.h"
#include "runtime/isa_table.h"
#include "runtime/parallel.h"

namespace pyfastnn {
namespace cpu {

namespace {

const IsaTable<ScanKernels>& table() {
  static const IsaTable<ScanKernels> t(&scan_kernels_scalar, &scan_kernels_avx2, &scan_kernels_avx512);
  return t;
}

// int64: exact, wrapping like torch (unsigned arithmetic, no overflow UB).
void row_i64(const std::int64_t* x, std::int64_t* y, std::int64_t n, bool reverse) {
  std::uint64_t acc = 0;
  for (std::int64_t s = 0; s < n; ++s) {
    const std::int64_t i = reverse ? n - 1 - s : s;
    acc += static_cast<std::uint64_t>(x[i]);
    y[i] = static_cast<std::int64_t>(acc);
  }
}

void lines_i64(const std::int64_t* x, std::int64_t* y, std::int64_t L, std::int64_t cols, std::int64_t ld,
               bool reverse) {
  std::uint64_t acc[kScanColumns] = {0};
  for (std::int64_t s = 0; s < L; ++s) {
    const std::int64_t l = reverse ? L - 1 - s : s;
    for (std::int64_t j = 0; j < cols; ++j) {
      acc[j] += static_cast<std::uint64_t>(x[l * ld + j]);
      y[l * ld + j] = static_cast<std::int64_t>(acc[j]);
    }
  }
}

}  // namespace

template <>
const ScanKernels<float>& scan_kernels<float>(CpuIsa isa) { return table().get<float>(isa); }
template <>
const ScanKernels<double>& scan_kernels<double>(CpuIsa isa) { return table().get<double>(isa); }

template <class T>
void cumsum(const T* x, T* y, std::int64_t outer, std::int64_t L, std::int64_t inner, bool reverse) {
  if (outer == 0 || L == 0 || inner == 0) return;
  auto row = [&] {
    if constexpr (std::is_same_v<T, std::int64_t>) return &row_i64;
    else return scan_kernels<T>(active_isa()).row;
  }();
  auto lines = [&] {
    if constexpr (std::is_same_v<T, std::int64_t>) return &lines_i64;
    else return scan_kernels<T>(active_isa()).lines;
  }();
  constexpr std::int64_t kGrain = 1 << 15;
  if (inner == 1) {
    parallel_for(outer, std::max<std::int64_t>(1, kGrain / L), [&](std::int64_t a, std::int64_t b) {
      for (std::int64_t o = a; o < b; ++o) row(x + o * L, y + o * L, L, reverse);
    });
    return;
  }
  const std::int64_t blocks = (inner + kScanColumns - 1) / kScanColumns;
  const std::int64_t per_item = L * std::min(inner, kScanColumns);
  parallel_for(outer * blocks, std::max<std::int64_t>(1, kGrain / per_item), [&](std::int64_t a, std::int64_t b) {
    for (std::int64_t it = a; it < b; ++it) {
      const std::int64_t o = it / blocks, c0 = (it % blocks) * kScanColumns;
      const std::int64_t off = o * L * inner + c0;
      lines(x + off, y + off, L, std::min(kScanColumns, inner - c0), inner, reverse);
    }
  });
}

template void cumsum<float>(const float*, float*, std::int64_t, std::int64_t, std::int64_t, bool);
template void cumsum<double>(const double*, double*, std::int64_t, std::int64_t, std::int64_t, bool);
template void cumsum<std::int64_t>(const std::int64_t*, std::int64_t*, std::int64_t, std::int64_t, std::int64_t, bool);

}  // namespace cpu
}  // namespace pyfastnn
