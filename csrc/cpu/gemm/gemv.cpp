// The GEMV kernel table and its threaded driver.
#include "cpu/gemm/gemv.h"

#include "runtime/dispatch.h"
#include "runtime/isa_table.h"
#include "runtime/parallel.h"

namespace pyfastnn {
namespace cpu {

namespace {
const IsaTable<GemvKernels>& table() {
  static const IsaTable<GemvKernels> t(&gemv_kernels_scalar, &gemv_kernels_avx2, &gemv_kernels_avx512);
  return t;
}
}  // namespace

template <>
const GemvKernels<float>& gemv_kernels<float>(CpuIsa isa) { return table().get<float>(isa); }
template <>
const GemvKernels<double>& gemv_kernels<double>(CpuIsa isa) { return table().get<double>(isa); }

template <class T>
void gemv(std::int64_t m, std::int64_t n, std::int64_t k, const T* a, std::ptrdiff_t lda, const T* w,
          std::ptrdiff_t ldw, T* c, std::ptrdiff_t ldc, const T* bias, Activation act) {
  const auto& kern = gemv_kernels<T>(active_isa());
  // A range of W's rows per thread, cut on multiples of 4 (the kernel's row
  // block) and large enough (~64 KB of W) that a thread's share pays for waking it.
  const std::int64_t grain = std::max<std::int64_t>(4, (std::int64_t{1} << 14) / std::max<std::int64_t>(k, 1));
  const std::int64_t blocks = (n + 3) / 4;
  parallel_for(blocks, (grain + 3) / 4, [&](std::int64_t b0, std::int64_t b1) {
    const std::int64_t j0 = 4 * b0, j1 = std::min(n, 4 * b1);
    for (std::int64_t i0 = 0; i0 < m; i0 += kGemvMaxRows) {
      const std::int64_t rows = std::min(kGemvMaxRows, m - i0);
      kern.dots(rows, k, a + i0 * lda, lda, w, ldw, j0, j1, c + i0 * ldc, ldc);
      for (std::int64_t i = i0; i < i0 + rows; ++i) kern.epilogue(c + i * ldc, bias, j0, j1, act);
    }
  });
}

template void gemv<float>(std::int64_t, std::int64_t, std::int64_t, const float*, std::ptrdiff_t, const float*,
                          std::ptrdiff_t, float*, std::ptrdiff_t, const float*, Activation);
template void gemv<double>(std::int64_t, std::int64_t, std::int64_t, const double*, std::ptrdiff_t, const double*,
                           std::ptrdiff_t, double*, std::ptrdiff_t, const double*, Activation);

}  // namespace cpu
}  // namespace pyfastnn
