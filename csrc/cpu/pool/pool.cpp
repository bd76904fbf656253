// Pooling drivers: planes split over the thread pool, the kernel table, and
// the backward passes (scatter-adds, memory-bound, compiled once).
#include "cpu/pool/pool.h"

#include <algorithm>
#include <atomic>

#include "runtime/dispatch.h"
#include "runtime/isa_table.h"
#include "runtime/parallel.h"

namespace pyfastnn {
namespace cpu {

namespace {

const IsaTable<PoolKernels>& table() {
  static const IsaTable<PoolKernels> t(&pool_kernels_scalar, &pool_kernels_avx2, &pool_kernels_avx512);
  return t;
}

// Runs body(p0, p1) over the planes, in chunks of planes the threads claim;
// small jobs stay on the calling thread. Each plane is one thread's, so the
// backward scatter-adds have the same bits for any thread count.
template <class Body>
void for_planes(const PoolGeometry& g, int nthreads, Body&& body) {
  const std::int64_t plane_work = std::max<std::int64_t>(1, std::max(g.H * g.W, g.OH * g.OW));
  parallel_for(g.planes, std::max<std::int64_t>(1, (1 << 14) / plane_work), body, nthreads);
}

}  // namespace

template <>
const PoolKernels<float>& pool_kernels<float>(CpuIsa isa) { return table().get<float>(isa); }
template <>
const PoolKernels<double>& pool_kernels<double>(CpuIsa isa) { return table().get<double>(isa); }

template <class T>
void max_pool2d_forward(const PoolGeometry& g, const T* x, T* y, std::int64_t* idx, int nthreads) {
  const auto k = pool_kernels<T>(active_isa()).max_forward;
  for_planes(g, nthreads, [&](std::int64_t p0, std::int64_t p1) { k(g, x, y, idx, p0, p1); });
}

template <class T>
void avg_pool2d_forward(const PoolGeometry& g, const T* x, T* y, int nthreads) {
  const auto k = pool_kernels<T>(active_isa()).avg_forward;
  for_planes(g, nthreads, [&](std::int64_t p0, std::int64_t p1) { k(g, x, y, p0, p1); });
}

template <class T>
bool max_pool2d_backward(const PoolGeometry& g, const T* gy, const std::int64_t* idx, T* gx, int nthreads) {
  const std::int64_t in_plane = g.H * g.W, out_plane = g.OH * g.OW;
  std::atomic<bool> ok{true};
  for_planes(g, nthreads, [&](std::int64_t p0, std::int64_t p1) {
    std::fill(gx + p0 * in_plane, gx + p1 * in_plane, T(0));
    for (std::int64_t p = p0; p < p1; ++p) {
      T* gxp = gx + p * in_plane;
      const T* gyp = gy + p * out_plane;
      const std::int64_t* ip = idx + p * out_plane;
      for (std::int64_t i = 0; i < out_plane; ++i) {
        const std::int64_t at = ip[i];
        if (static_cast<std::uint64_t>(at) >= static_cast<std::uint64_t>(in_plane)) {
          ok.store(false, std::memory_order_relaxed);
          return;
        }
        gxp[at] += gyp[i];  // overlapping windows add up
      }
    }
  });
  return ok.load();
}

template <class T>
void avg_pool2d_backward(const PoolGeometry& g, const T* gy, T* gx, int nthreads) {
  const std::int64_t in_plane = g.H * g.W, out_plane = g.OH * g.OW;
  const T scale = avg_scale<T>(g);
  for_planes(g, nthreads, [&](std::int64_t p0, std::int64_t p1) {
    std::fill(gx + p0 * in_plane, gx + p1 * in_plane, T(0));
    for (std::int64_t p = p0; p < p1; ++p) {
      T* gxp = gx + p * in_plane;
      const T* gyp = gy + p * out_plane;
      for (std::int64_t oy = 0; oy < g.OH; ++oy) {
        const std::int64_t y0 = std::max<std::int64_t>(0, oy * g.SH - g.PH);
        const std::int64_t y1 = std::min(g.H, oy * g.SH - g.PH + g.KH);
        for (std::int64_t ox = 0; ox < g.OW; ++ox) {
          const std::int64_t x0 = std::max<std::int64_t>(0, ox * g.SW - g.PW);
          const std::int64_t x1 = std::min(g.W, ox * g.SW - g.PW + g.KW);
          const T v = gyp[oy * g.OW + ox] * scale;
          for (std::int64_t iy = y0; iy < y1; ++iy)
            for (std::int64_t ix = x0; ix < x1; ++ix) gxp[iy * g.W + ix] += v;
        }
      }
    }
  });
}

#define PFN_POOL_INSTANTIATE(T)                                                                           \
  template void max_pool2d_forward<T>(const PoolGeometry&, const T*, T*, std::int64_t*, int);              \
  template void avg_pool2d_forward<T>(const PoolGeometry&, const T*, T*, int);                             \
  template bool max_pool2d_backward<T>(const PoolGeometry&, const T*, const std::int64_t*, T*, int);       \
  template void avg_pool2d_backward<T>(const PoolGeometry&, const T*, T*, int);
PFN_POOL_INSTANTIATE(float)
PFN_POOL_INSTANTIATE(double)
#undef PFN_POOL_INSTANTIATE

}  // namespace cpu
}  // namespace pyfastnn
