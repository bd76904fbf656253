// Cache blocking from the detected cache sizes, and the kernel-set table.
#include <algorithm>
#include <cstdlib>

#include "cpu/gemm/gemm.h"
#include "cpu/gemm/kernels.h"
#include "runtime/isa_table.h"

namespace pyfastnn {
namespace cpu {

namespace {

std::int64_t round_down(std::int64_t v, std::int64_t unit) { return std::max(unit, v / unit * unit); }

long env_or(const char* name, long fallback) {
  // Tuning overrides (PYFASTNN_GEMM_KC / _NB / _MB), for benchmarks only.
  const char* v = std::getenv(name);
  if (!v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  return (end != v && x > 0) ? x : fallback;
}

}  // namespace

GemmBlocking gemm_blocking(int mr, int nr, std::size_t elem_size) {
  const CpuInfo& info = cpu_info();
  GemmBlocking g;
  // An A sliver (mr x kc) should take about a quarter of L1, leaving room for
  // the B slivers streaming through and the C tile.
  const std::int64_t kc = static_cast<std::int64_t>(info.l1d_bytes / 4 / (mr * elem_size));
  g.kc = static_cast<int>(std::min<long>(kMaxKc, env_or("PYFASTNN_GEMM_KC", std::clamp<std::int64_t>(kc / 8 * 8, 64, kMaxKc))));
  // The packed B block (kc x nb) takes about half of the per-core L2.
  const std::int64_t nb = static_cast<std::int64_t>(info.l2_bytes / 2 / (g.kc * elem_size));
  g.nb = round_down(env_or("PYFASTNN_GEMM_NB", static_cast<long>(std::clamp<std::int64_t>(nb, nr, 4096))), nr);
  // The shared packed A block (mb x kc) takes up to a quarter of L3.
  const std::int64_t mb = static_cast<std::int64_t>(info.l3_bytes / 4 / (g.kc * elem_size));
  g.mb = round_down(env_or("PYFASTNN_GEMM_MB", static_cast<long>(std::clamp<std::int64_t>(mb, mr, 1 << 14))), mr);
  return g;
}

namespace {

const IsaTable<GemmKernelSet>& kernel_table() {
  static const IsaTable<GemmKernelSet> table(&gemm_kernels_scalar, &gemm_kernels_avx2, &gemm_kernels_avx512);
  return table;
}

}  // namespace

template <>
const GemmKernelSet<float>& gemm_kernels<float>(CpuIsa isa) {
  return kernel_table().get<float>(isa);
}
template <>
const GemmKernelSet<double>& gemm_kernels<double>(CpuIsa isa) {
  return kernel_table().get<double>(isa);
}

}  // namespace cpu
}  // namespace pyfastnn
