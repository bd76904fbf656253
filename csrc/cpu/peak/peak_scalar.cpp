#include "cpu/peak/peak.h"

namespace pyfastnn {
namespace cpu {

std::int64_t fma_peak_loop(CpuIsa isa, std::int64_t iters) {
  switch (isa) {
    case CpuIsa::avx512: return fma_peak_loop_avx512(iters);
    case CpuIsa::avx2: return fma_peak_loop_avx2(iters);
    case CpuIsa::scalar: break;
  }
  return fma_peak_loop_scalar(iters);
}

std::int64_t fma_peak_loop_scalar(std::int64_t iters) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const float x = 1.0000001f, y = 0.9999999f;
  for (std::int64_t i = 0; i < iters; ++i)
    for (float& a : acc) a = a * x + y;
  volatile float sink = acc[0] + acc[7];
  (void)sink;
  return iters * 8 * 2;
}

}  // namespace cpu
}  // namespace pyfastnn
