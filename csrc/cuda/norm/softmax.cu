// softmax / log_softmax and their gradients over the rows of a contiguous
// (rows, n) array, float32 or float16 storage with float32 math.
//
// Short rows (n <= 1024): one warp per row, 4 rows per 128-thread block; lane
// l holds elements l, l+32, ... in registers, so the row is read from global
// memory once; shuffle reductions. Long rows: one block per row (128-1024
// threads, ~8 elements each), the row cached in dynamic shared memory when it
// fits (softmax: n floats, backward: 2n), block reductions through 32 floats of
// static shared memory. A one-thread-per-row reference sits beside them.
//
// Same formulas as the CPU (cpu/rowwise/rowwise_impl.h): m = max (NaN
// ignored), s = sum exp(x - m); softmax = exp(x - m) / s, log_softmax =
// x - (m + log s). A NaN reaches the whole row through s.
#include "cuda/norm/norm.h"
#include "cuda/norm/reduce.cuh"
#include "cuda/norm/rows.cuh"

namespace pyfastnn {
namespace cuda {

namespace {

template <class T, int K>
__global__ void softmax_warp_kernel(const T* __restrict__ x, T* __restrict__ y, std::int64_t rows, int n, bool log) {
  const int lane = threadIdx.x & 31;
  const int warps = blockDim.x >> 5;
  for (std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * warps + (threadIdx.x >> 5); row < rows;
       row += static_cast<std::int64_t>(gridDim.x) * warps) {
    const T* xr = x + row * n;
    T* yr = y + row * n;
    float v[K];
    float m = -INFINITY;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int i = lane + 32 * k;
      v[k] = i < n ? to_float(xr[i]) : -INFINITY;
      m = fmaxf(m, v[k]);
    }
    m = warp_max(m);
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      if (lane + 32 * k < n) {
        const float e = expf(v[k] - m);
        s += e;
        if (!log) v[k] = e;
      }
    }
    s = warp_sum(s);
    if (log) {
      const float shift = m + logf(s);
#pragma unroll
      for (int k = 0; k < K; ++k)
        if (lane + 32 * k < n) yr[lane + 32 * k] = from_float<T>(v[k] - shift);
    } else {
      const float inv = 1.f / s;
#pragma unroll
      for (int k = 0; k < K; ++k)
        if (lane + 32 * k < n) yr[lane + 32 * k] = from_float<T>(v[k] * inv);
    }
  }
}

template <class T>
__global__ void __launch_bounds__(1024)
    softmax_block_kernel(const T* __restrict__ x, T* __restrict__ y, std::int64_t rows, std::int64_t n, bool log,
        bool cached) {
  extern __shared__ float row_cache[];  // n floats when cached; each thread reads back only what it wrote
  __shared__ float scratch[32];
  for (std::int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* xr = x + row * n;
    T* yr = y + row * n;
    float m = -INFINITY;
#pragma unroll 4
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float v = to_float(xr[i]);
      if (cached) row_cache[i] = v;
      m = fmaxf(m, v);
    }
    m = block_max(m, scratch);
    float s = 0.f;
#pragma unroll 4
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float e = expf((cached ? row_cache[i] : to_float(xr[i])) - m);
      s += e;
      if (cached && !log) row_cache[i] = e;
    }
    s = block_sum(s, scratch);
    if (log) {
      const float shift = m + logf(s);
#pragma unroll 4
      for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x)
        yr[i] = from_float<T>((cached ? row_cache[i] : to_float(xr[i])) - shift);
    } else {
      const float inv = 1.f / s;
#pragma unroll 4
      for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x)
        yr[i] = from_float<T>((cached ? row_cache[i] : expf(to_float(xr[i]) - m)) * inv);
    }
  }
}

template <class T>
__global__ void softmax_reference_kernel(const T* x, T* y, std::int64_t rows, std::int64_t n, bool log) {
  const std::int64_t row = global_thread();
  if (row >= rows) return;
  const T* xr = x + row * n;
  T* yr = y + row * n;
  float m = -INFINITY;
  for (std::int64_t i = 0; i < n; ++i) m = fmaxf(m, to_float(xr[i]));
  float s = 0.f;
  for (std::int64_t i = 0; i < n; ++i) s += expf(to_float(xr[i]) - m);
  for (std::int64_t i = 0; i < n; ++i)
    yr[i] = from_float<T>(log ? to_float(xr[i]) - (m + logf(s)) : expf(to_float(xr[i]) - m) / s);
}

template <class T, int K>
__global__ void softmax_backward_warp_kernel(const T* __restrict__ g, const T* __restrict__ y, T* __restrict__ gx,
                                             std::int64_t rows, int n, bool log) {
  const int lane = threadIdx.x & 31;
  const int warps = blockDim.x >> 5;
  for (std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * warps + (threadIdx.x >> 5); row < rows;
       row += static_cast<std::int64_t>(gridDim.x) * warps) {
    const std::int64_t base = row * n;
    float gv[K], yv[K];
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int i = lane + 32 * k;
      gv[k] = i < n ? to_float(g[base + i]) : 0.f;
      yv[k] = i < n ? to_float(y[base + i]) : 0.f;
      s += log ? gv[k] : gv[k] * yv[k];
    }
    s = warp_sum(s);
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int i = lane + 32 * k;
      if (i < n) gx[base + i] = from_float<T>(log ? gv[k] - expf(yv[k]) * s : yv[k] * (gv[k] - s));
    }
  }
}

template <class T>
__global__ void __launch_bounds__(1024)
    softmax_backward_block_kernel(const T* __restrict__ g, const T* __restrict__ y, T* __restrict__ gx,
        std::int64_t rows, std::int64_t n, bool log, bool cached) {
  extern __shared__ float row_cache[];  // g then y, n floats each, when cached
  __shared__ float scratch[32];
  float* g_cache = row_cache;
  float* y_cache = row_cache + (cached ? n : 0);
  for (std::int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const std::int64_t base = row * n;
    float s = 0.f;
#pragma unroll 4
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float gv = to_float(g[base + i]), yv = to_float(y[base + i]);
      if (cached) {
        g_cache[i] = gv;
        y_cache[i] = yv;
      }
      s += log ? gv : gv * yv;
    }
    s = block_sum(s, scratch);
#pragma unroll 4
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float gv = cached ? g_cache[i] : to_float(g[base + i]);
      const float yv = cached ? y_cache[i] : to_float(y[base + i]);
      gx[base + i] = from_float<T>(log ? gv - expf(yv) * s : yv * (gv - s));
    }
  }
}

template <class T>
__global__ void softmax_backward_reference_kernel(const T* g, const T* y, T* gx, std::int64_t rows, std::int64_t n,
                                                  bool log) {
  const std::int64_t row = global_thread();
  if (row >= rows) return;
  const std::int64_t base = row * n;
  float s = 0.f;
  for (std::int64_t i = 0; i < n; ++i) s += log ? to_float(g[base + i]) : to_float(g[base + i]) * to_float(y[base + i]);
  for (std::int64_t i = 0; i < n; ++i) {
    const float gv = to_float(g[base + i]), yv = to_float(y[base + i]);
    gx[base + i] = from_float<T>(log ? gv - expf(yv) * s : yv * (gv - s));
  }
}

template <class F>
cudaError_t with_storage(StorageType dtype, F&& f) {
  switch (dtype) {
    case StorageType::f32: f(float{}); return cudaGetLastError();
    case StorageType::f16: f(__half{}); return cudaGetLastError();
  }
  return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t softmax_forward(const void* x, void* y, std::int64_t rows, std::int64_t n, bool log, StorageType dtype,
                            RowImpl impl, cudaStream_t stream) {
  if (rows <= 0 || n <= 0) return cudaSuccess;
  return with_storage(dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* xp = static_cast<const T*>(x);
    T* yp = static_cast<T*>(y);
    if (impl == RowImpl::reference) {
      softmax_reference_kernel<T><<<static_cast<unsigned>((rows + 127) / 128), 128, 0, stream>>>(xp, yp, rows, n, log);
    } else if (use_warp_path(impl, n)) {
      with_lane_count(n, [&](auto k) {
        softmax_warp_kernel<T, decltype(k)::value><<<warp_path_grid(rows), kWarpPathThreads, 0, stream>>>(
            xp, yp, rows, static_cast<int>(n), log);
      });
    } else {
      const bool cached = n * static_cast<std::int64_t>(sizeof(float)) <= kRowCacheBytes;
      const std::size_t smem = cached ? static_cast<std::size_t>(n) * sizeof(float) : 0;
      softmax_block_kernel<T><<<block_path_grid(rows), block_path_threads(n), smem, stream>>>(xp, yp, rows, n, log,
                                                                                             cached);
    }
  });
}

cudaError_t softmax_backward(const void* grad_y, const void* y, void* gx, std::int64_t rows, std::int64_t n, bool log,
                             StorageType dtype, RowImpl impl, cudaStream_t stream) {
  if (rows <= 0 || n <= 0) return cudaSuccess;
  return with_storage(dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* gp = static_cast<const T*>(grad_y);
    const T* yp = static_cast<const T*>(y);
    T* out = static_cast<T*>(gx);
    if (impl == RowImpl::reference) {
      softmax_backward_reference_kernel<T><<<static_cast<unsigned>((rows + 127) / 128), 128, 0, stream>>>(
          gp, yp, out, rows, n, log);
    } else if (use_warp_path(impl, n)) {
      with_lane_count(n, [&](auto k) {
        softmax_backward_warp_kernel<T, decltype(k)::value><<<warp_path_grid(rows), kWarpPathThreads, 0, stream>>>(
            gp, yp, out, rows, static_cast<int>(n), log);
      });
    } else {
      const bool cached = 2 * n * static_cast<std::int64_t>(sizeof(float)) <= kRowCacheBytes;
      const std::size_t smem = cached ? 2 * static_cast<std::size_t>(n) * sizeof(float) : 0;
      softmax_backward_block_kernel<T><<<block_path_grid(rows), block_path_threads(n), smem, stream>>>(
          gp, yp, out, rows, n, log, cached);
    }
  });
}

}  // namespace cuda
}  // namespace pyfastnn
