// 2-D pooling, one thread per output (forward) or per input element (average
// backward), grid-stride over the flat NCHW index so that consecutive threads
// touch consecutive columns. Windows are clipped to the input once per output,
// as in the CPU kernels (cpu/pool/pool_impl.h), and the per-window order of
// operations is theirs, so the values and indices match the CPU exactly.
//
// Splitting the flat index into (plane, row, column) takes divisions, which
// in 64 bits cost more than the kernel's memory traffic: when every flat
// index fits in 31 bits (the usual case) they go through FastDivider
// (multiply-high and shift), else through plain 64-bit division.
#include "cuda/elementwise/launch.cuh"
#include "cuda/pool/pool.h"

#include <type_traits>

namespace pyfastnn {
namespace cuda {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ std::int64_t max64(std::int64_t a, std::int64_t b) { return a > b ? a : b; }
__device__ __forceinline__ std::int64_t min64(std::int64_t a, std::int64_t b) { return a < b ? a : b; }

// A divisor with both forms: FastDivider for 31-bit operands (Narrow), the
// plain 64-bit value otherwise. FastDivider holds 32-bit divisors only (a
// default one divides by 1), so the wide path must not read its .divisor: a
// stride or size of 2^31 or more would silently divide by 1.
struct Divisor {
  FastDivider fast;
  std::int64_t value;
};

struct Dividers {
  Divisor cols, rows, stride_y, stride_x;  // OW or W, OH or H, SH, SW
};

template <bool Narrow>
__device__ __forceinline__ std::int64_t divide(std::int64_t n, const Divisor& d) {
  if (Narrow) return d.fast.div(static_cast<std::uint32_t>(n));
  return n / d.value;
}

// flat index -> (plane, y, x) in a (planes, rows, cols) array.
template <bool Narrow>
__device__ __forceinline__ void split(std::int64_t i, const Dividers& d, std::int64_t* plane, std::int64_t* y,
                                      std::int64_t* x) {
  const std::int64_t r = divide<Narrow>(i, d.cols);
  *x = i - r * d.cols.value;
  *plane = divide<Narrow>(r, d.rows);
  *y = r - *plane * d.rows.value;
}

template <bool Narrow>
__global__ void max_pool_forward_kernel(PoolShape s, Dividers d, const float* __restrict__ x, float* __restrict__ y,
                                        std::int64_t* __restrict__ indices) {
  const std::int64_t total = s.planes * s.OH * s.OW, stride = grid_threads();
  for (std::int64_t o = global_thread(); o < total; o += stride) {
    std::int64_t plane, oy, ox;
    split<Narrow>(o, d, &plane, &oy, &ox);
    const float* xp = x + plane * s.H * s.W;
    const std::int64_t y0 = max64(0, oy * s.SH - s.PH), y1 = min64(s.H, oy * s.SH - s.PH + s.KH);
    const std::int64_t x0 = max64(0, ox * s.SW - s.PW), x1 = min64(s.W, ox * s.SW - s.PW + s.KW);
    float best = -INFINITY;
    std::int64_t arg = y0 * s.W + x0;
    for (std::int64_t iy = y0; iy < y1; ++iy) {
      for (std::int64_t ix = x0; ix < x1; ++ix) {
        const float v = xp[iy * s.W + ix];
        // Larger, or the first NaN (which then stays), as in PyTorch.
        if (v > best || (v != v && best == best)) {
          best = v;
          arg = iy * s.W + ix;
        }
      }
    }
    y[o] = best;
    indices[o] = arg;
  }
}

template <bool Narrow>
__global__ void avg_pool_forward_kernel(PoolShape s, Dividers d, const float* __restrict__ x, float* __restrict__ y) {
  const std::int64_t total = s.planes * s.OH * s.OW, stride = grid_threads();
  const float scale = 1.f / static_cast<float>(s.KH * s.KW);  // padding counted (count_include_pad)
  for (std::int64_t o = global_thread(); o < total; o += stride) {
    std::int64_t plane, oy, ox;
    split<Narrow>(o, d, &plane, &oy, &ox);
    const float* xp = x + plane * s.H * s.W;
    const std::int64_t y0 = max64(0, oy * s.SH - s.PH), y1 = min64(s.H, oy * s.SH - s.PH + s.KH);
    const std::int64_t x0 = max64(0, ox * s.SW - s.PW), x1 = min64(s.W, ox * s.SW - s.PW + s.KW);
    float sum = 0.f;
    for (std::int64_t iy = y0; iy < y1; ++iy)
      for (std::int64_t ix = x0; ix < x1; ++ix) sum += xp[iy * s.W + ix];
    y[o] = sum * scale;
  }
}

template <bool Narrow>
__global__ void max_pool_backward_atomic_kernel(PoolShape s, Dividers d, const float* __restrict__ gy,
                                                const std::int64_t* __restrict__ indices, float* __restrict__ gx,
                                                int* __restrict__ bad_index) {
  const std::int64_t in_plane = s.H * s.W;
  const std::int64_t total = s.planes * s.OH * s.OW, stride = grid_threads();
  for (std::int64_t o = global_thread(); o < total; o += stride) {
    const std::int64_t at = indices[o];
    if (static_cast<std::uint64_t>(at) >= static_cast<std::uint64_t>(in_plane)) {
      *bad_index = 1;
      continue;
    }
    const std::int64_t plane = divide<Narrow>(o, d.cols);  // cols holds OH * OW here
    atomicAdd(gx + plane * in_plane + at, gy[o]);
  }
}

__global__ void max_pool_backward_ordered_kernel(PoolShape s, const float* __restrict__ gy,
                                                 const std::int64_t* __restrict__ indices, float* __restrict__ gx,
                                                 int* __restrict__ bad_index) {
  const std::int64_t out_plane = s.OH * s.OW, in_plane = s.H * s.W, stride = grid_threads();
  for (std::int64_t plane = global_thread(); plane < s.planes; plane += stride) {
    float* gxp = gx + plane * in_plane;
    for (std::int64_t i = plane * out_plane; i < (plane + 1) * out_plane; ++i) {
      const std::int64_t at = indices[i];
      if (static_cast<std::uint64_t>(at) >= static_cast<std::uint64_t>(in_plane)) {
        *bad_index = 1;
        continue;
      }
      gxp[at] += gy[i];
    }
  }
}

template <bool Narrow>
__global__ void avg_pool_backward_kernel(PoolShape s, Dividers d, const float* __restrict__ gy,
                                         float* __restrict__ gx) {
  const std::int64_t total = s.planes * s.H * s.W, stride = grid_threads();
  const float scale = 1.f / static_cast<float>(s.KH * s.KW);
  for (std::int64_t e = global_thread(); e < total; e += stride) {
    std::int64_t plane, iy, ix;
    split<Narrow>(e, d, &plane, &iy, &ix);
    const float* gyp = gy + plane * s.OH * s.OW;
    // Outputs whose window [o*S - P, o*S - P + K) holds i: ceil((i + P - K + 1) / S) <= o <= (i + P) / S.
    // A negative numerator means the first output (the quotient is clipped to 0 either way).
    const std::int64_t ny = iy + s.PH - s.KH + s.SH, nx = ix + s.PW - s.KW + s.SW;
    const std::int64_t oy0 = ny > 0 ? divide<Narrow>(ny, d.stride_y) : 0;
    const std::int64_t oy1 = min64(s.OH - 1, divide<Narrow>(iy + s.PH, d.stride_y));
    const std::int64_t ox0 = nx > 0 ? divide<Narrow>(nx, d.stride_x) : 0;
    const std::int64_t ox1 = min64(s.OW - 1, divide<Narrow>(ix + s.PW, d.stride_x));
    float sum = 0.f;
    // __fmul_rn: the CPU rounds gy * scale before adding it; a contracted
    // fma (nvcc's default) would differ from it in the last bit.
    for (std::int64_t oy = oy0; oy <= oy1; ++oy)
      for (std::int64_t ox = ox0; ox <= ox1; ++ox) sum += __fmul_rn(gyp[oy * s.OW + ox], scale);
    gx[e] = sum;
  }
}

constexpr std::int64_t kNarrowLimit = std::int64_t{1} << 31;

// Every flat index and every numerator a kernel divides fits in 31 bits.
bool narrow(const PoolShape& s) {
  const std::int64_t in = s.planes * s.H * s.W, out = s.planes * s.OH * s.OW;
  return in < kNarrowLimit && out < kNarrowLimit && s.H + s.PH + s.SH < kNarrowLimit &&
         s.W + s.PW + s.SW < kNarrowLimit;
}

// FastDivider takes 32-bit divisors; a size past that only occurs with wide
// (64-bit) indexing, which divides by .value. Sizes are >= 1 here.
Divisor divider(std::int64_t v) {
  return {v < kNarrowLimit ? FastDivider(static_cast<std::uint32_t>(v)) : FastDivider(), v};
}

template <class Launch>
void launch_by_width(const PoolShape& s, Launch&& launch) {
  if (narrow(s)) launch(std::true_type{});
  else launch(std::false_type{});
}

}  // namespace

cudaError_t max_pool2d_forward(const PoolShape& s, const float* x, float* y, std::int64_t* indices,
                               cudaStream_t stream) {
  const std::int64_t total = s.planes * s.OH * s.OW;
  if (total <= 0) return cudaSuccess;
  const Dividers d{divider(s.OW), divider(s.OH), divider(s.SH), divider(s.SW)};
  launch_by_width(s, [&](auto n) {
    max_pool_forward_kernel<decltype(n)::value><<<grid_for(total, kThreads), kThreads, 0, stream>>>(s, d, x, y,
                                                                                                   indices);
  });
  return cudaGetLastError();
}

cudaError_t avg_pool2d_forward(const PoolShape& s, const float* x, float* y, cudaStream_t stream) {
  const std::int64_t total = s.planes * s.OH * s.OW;
  if (total <= 0) return cudaSuccess;
  const Dividers d{divider(s.OW), divider(s.OH), divider(s.SH), divider(s.SW)};
  launch_by_width(s, [&](auto n) {
    avg_pool_forward_kernel<decltype(n)::value><<<grid_for(total, kThreads), kThreads, 0, stream>>>(s, d, x, y);
  });
  return cudaGetLastError();
}

cudaError_t max_pool2d_backward(const PoolShape& s, const float* grad_y, const std::int64_t* indices, float* gx,
                                int* bad_index, bool deterministic, cudaStream_t stream) {
  const std::int64_t in_total = s.planes * s.H * s.W, out_total = s.planes * s.OH * s.OW;
  if (in_total > 0) {
    const cudaError_t err = cudaMemsetAsync(gx, 0, static_cast<std::size_t>(in_total) * sizeof(float), stream);
    if (err != cudaSuccess) return err;
  }
  if (out_total <= 0) return cudaSuccess;
  if (deterministic) {
    max_pool_backward_ordered_kernel<<<grid_for(s.planes, 128), 128, 0, stream>>>(s, grad_y, indices, gx, bad_index);
  } else {
    const std::int64_t out_plane = s.OH * s.OW;
    const Dividers d{divider(out_plane), divider(1), divider(1), divider(1)};
    launch_by_width(s, [&](auto n) {
      max_pool_backward_atomic_kernel<decltype(n)::value><<<grid_for(out_total, kThreads), kThreads, 0, stream>>>(
          s, d, grad_y, indices, gx, bad_index);
    });
  }
  return cudaGetLastError();
}

cudaError_t avg_pool2d_backward(const PoolShape& s, const float* grad_y, float* gx, cudaStream_t stream) {
  const std::int64_t total = s.planes * s.H * s.W;
  if (total <= 0) return cudaSuccess;
  const Dividers d{divider(s.W), divider(s.H), divider(s.SH), divider(s.SW)};
  launch_by_width(s, [&](auto n) {
    avg_pool_backward_kernel<decltype(n)::value><<<grid_for(total, kThreads), kThreads, 0, stream>>>(s, d, grad_y,
                                                                                                    gx);
  });
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace pyfastnn
