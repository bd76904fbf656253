// Pooling drivers: planes split over the thread pool, the kernel table, and
// the backward passes (scatter-adds, memory-bound, compiled once).
#include "cpu/pool/pool.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <vector>

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

namespace {

// Bin i of n over `in`: [floor(i*in/n), ceil((i+1)*in/n)), in 128-bit so a huge
// output size cannot overflow the product.
struct Bins {
  std::vector<std::int64_t> lo, hi;
  Bins(std::int64_t in, std::int64_t n) : lo(static_cast<std::size_t>(n)), hi(static_cast<std::size_t>(n)) {
    for (std::int64_t i = 0; i < n; ++i) {
      const __int128 a = static_cast<__int128>(i) * in, b = static_cast<__int128>(i + 1) * in;
      lo[i] = static_cast<std::int64_t>(a / n);
      hi[i] = static_cast<std::int64_t>((b + n - 1) / n);
    }
  }
};

}  // namespace

template <class T>
void adaptive_avg_pool2d_forward(const PoolGeometry& g, const T* x, T* y, int nthreads) {
  const std::int64_t in_plane = g.H * g.W, out_plane = g.OH * g.OW;
  if (g.OH == 1 && g.OW == 1) {  // global average pooling: mean of each plane
    const auto mean_planes = pool_kernels<T>(active_isa()).mean_planes;
    for_planes(g, nthreads, [&](std::int64_t p0, std::int64_t p1) { mean_planes(x, in_plane, y, p0, p1); });
    return;
  }
  const Bins rows(g.H, g.OH), cols(g.W, g.OW);
  for_planes(g, nthreads, [&](std::int64_t p0, std::int64_t p1) {
    for (std::int64_t p = p0; p < p1; ++p) {
      const T* xp = x + p * in_plane;
      T* yp = y + p * out_plane;
      for (std::int64_t oy = 0; oy < g.OH; ++oy)
        for (std::int64_t ox = 0; ox < g.OW; ++ox) {
          const std::int64_t y0 = rows.lo[oy], y1 = rows.hi[oy], x0 = cols.lo[ox], x1 = cols.hi[ox];
          T s = 0;
          for (std::int64_t iy = y0; iy < y1; ++iy)
            for (std::int64_t ix = x0; ix < x1; ++ix) s += xp[iy * g.W + ix];
          yp[oy * g.OW + ox] = s / static_cast<T>((y1 - y0) * (x1 - x0));
        }
    }
  });
}

template <class T>
void adaptive_max_pool2d_forward(const PoolGeometry& g, const T* x, T* y, std::int64_t* idx, int nthreads) {
  const std::int64_t in_plane = g.H * g.W, out_plane = g.OH * g.OW;
  const Bins rows(g.H, g.OH), cols(g.W, g.OW);
  for_planes(g, nthreads, [&](std::int64_t p0, std::int64_t p1) {
    for (std::int64_t p = p0; p < p1; ++p) {
      const T* xp = x + p * in_plane;
      for (std::int64_t oy = 0; oy < g.OH; ++oy)
        for (std::int64_t ox = 0; ox < g.OW; ++ox) {
          const std::int64_t y0 = rows.lo[oy], y1 = rows.hi[oy], x0 = cols.lo[ox], x1 = cols.hi[ox];
          T best = -std::numeric_limits<T>::infinity();
          std::int64_t arg = y0 * g.W + x0;
          for (std::int64_t iy = y0; iy < y1; ++iy)
            for (std::int64_t ix = x0; ix < x1; ++ix) {
              const T v = xp[iy * g.W + ix];
              if (v > best || v != v) {
                best = v;
                arg = iy * g.W + ix;
              }
            }
          y[p * out_plane + oy * g.OW + ox] = best;
          idx[p * out_plane + oy * g.OW + ox] = arg;
        }
    }
  });
}

template <class T>
void adaptive_avg_pool2d_backward(const PoolGeometry& g, const T* gy, T* gx, int nthreads) {
  const std::int64_t in_plane = g.H * g.W, out_plane = g.OH * g.OW;
  if (g.OH == 1 && g.OW == 1) {  // the mean's gradient: gy / (H W) everywhere
    const T count = static_cast<T>(in_plane);
    for_planes(g, nthreads, [&](std::int64_t p0, std::int64_t p1) {
      for (std::int64_t p = p0; p < p1; ++p) std::fill(gx + p * in_plane, gx + (p + 1) * in_plane, gy[p] / count);
    });
    return;
  }
  const Bins rows(g.H, g.OH), cols(g.W, g.OW);
  for_planes(g, nthreads, [&](std::int64_t p0, std::int64_t p1) {
    std::fill(gx + p0 * in_plane, gx + p1 * in_plane, T(0));
    for (std::int64_t p = p0; p < p1; ++p) {
      T* gxp = gx + p * in_plane;
      const T* gyp = gy + p * out_plane;
      for (std::int64_t oy = 0; oy < g.OH; ++oy)
        for (std::int64_t ox = 0; ox < g.OW; ++ox) {
          const std::int64_t y0 = rows.lo[oy], y1 = rows.hi[oy], x0 = cols.lo[ox], x1 = cols.hi[ox];
          // gy / kh / kw, torch's two divisions, so the result rounds like its.
          const T v = gyp[oy * g.OW + ox] / static_cast<T>(y1 - y0) / static_cast<T>(x1 - x0);
          for (std::int64_t iy = y0; iy < y1; ++iy)
            for (std::int64_t ix = x0; ix < x1; ++ix) gxp[iy * g.W + ix] += v;
        }
    }
  });
}

#define PFN_POOL_INSTANTIATE(T)                                                                           \
  template void max_pool2d_forward<T>(const PoolGeometry&, const T*, T*, std::int64_t*, int);              \
  template void avg_pool2d_forward<T>(const PoolGeometry&, const T*, T*, int);                             \
  template bool max_pool2d_backward<T>(const PoolGeometry&, const T*, const std::int64_t*, T*, int);       \
  template void avg_pool2d_backward<T>(const PoolGeometry&, const T*, T*, int);                            \
  template void adaptive_avg_pool2d_forward<T>(const PoolGeometry&, const T*, T*, int);                    \
  template void adaptive_max_pool2d_forward<T>(const PoolGeometry&, const T*, T*, std::int64_t*, int);     \
  template void adaptive_avg_pool2d_backward<T>(const PoolGeometry&, const T*, T*, int);
PFN_POOL_INSTANTIATE(float)
PFN_POOL_INSTANTIATE(double)
#undef PFN_POOL_INSTANTIATE

}  // namespace cpu
}  // namespace pyfastnn
