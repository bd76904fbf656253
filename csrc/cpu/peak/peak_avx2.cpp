#include <immintrin.h>

#include "cpu/peak/peak.h"

namespace pyfastnn {
namespace cpu {

std::int64_t fma_peak_loop_avx2(std::int64_t iters) {
  // 12 chains: 2 FMA pipes x latency 4-6 cycles needs at least 8-12.
  constexpr int kChains = 12;
  __m256 acc[kChains];
  const __m256 x = _mm256_set1_ps(1.0000001f), y = _mm256_set1_ps(0.9999999f);
  for (int j = 0; j < kChains; ++j) acc[j] = _mm256_set1_ps(static_cast<float>(j));
  for (std::int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int j = 0; j < kChains; ++j) acc[j] = _mm256_fmadd_ps(acc[j], x, y);
  }
  __m256 sum = acc[0];
  for (int j = 1; j < kChains; ++j) sum = _mm256_add_ps(sum, acc[j]);
  alignas(64) float out[8];
  _mm256_store_ps(out, sum);
  volatile float sink = out[0];
  (void)sink;
  return iters * kChains * 8 * 2;
}

}  // namespace cpu
}  // namespace pyfastnn
