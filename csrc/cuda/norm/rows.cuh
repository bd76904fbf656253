// Launch shapes shared by the row-wise kernels: one warp per row (the row in
// registers, K elements per lane) up to 1024 elements, one block per row
// beyond (the row cached in shared memory when it fits in 47 KiB, else read
// again from global memory / L2 on each pass).
#pragma once
#include <climits>
#include <cstdint>
#include <type_traits>

#include "cuda/elementwise/launch.cuh"
#include "cuda/norm/norm.h"

namespace pyfastnn {
namespace cuda {

constexpr std::int64_t kWarpRowMax = 1024;
constexpr int kWarpPathThreads = 128;                  // 4 rows per block
// 48 KiB per block (static + dynamic) without an opt-in; 1 KiB left for the
// kernels' static scratch.
constexpr std::int64_t kRowCacheBytes = 47 * 1024;

inline bool use_warp_path(RowImpl impl, std::int64_t n) {
  return n <= kWarpRowMax && (impl == RowImpl::automatic || impl == RowImpl::warp);
}

// Threads per block for one row of n elements: about 8 elements per thread.
inline int block_path_threads(std::int64_t n) {
  int t = 128;
  while (t < 1024 && static_cast<std::int64_t>(t) * 8 < n) t *= 2;
  return t;
}

inline unsigned warp_path_grid(std::int64_t rows) { return grid_for(rows * 32, kWarpPathThreads); }

inline unsigned block_path_grid(std::int64_t rows) {
  return static_cast<unsigned>(rows < INT_MAX ? rows : INT_MAX);
}

// Calls f(std::integral_constant<int, K>{}) with K = 32-element slices per
// row (a power of two, 32 * K >= n); n <= kWarpRowMax.
template <class F>
void with_lane_count(std::int64_t n, F&& f) {
  if (n <= 32) f(std::integral_constant<int, 1>{});
  else if (n <= 64) f(std::integral_constant<int, 2>{});
  else if (n <= 128) f(std::integral_constant<int, 4>{});
  else if (n <= 256) f(std::integral_constant<int, 8>{});
  else if (n <= 512) f(std::integral_constant<int, 16>{});
  else f(std::integral_constant<int, 32>{});
}

}  // namespace cuda
}  // namespace pyfastnn
