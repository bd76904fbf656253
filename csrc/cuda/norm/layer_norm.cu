// layer_norm forward and backward over the rows of a contiguous (rows, n)
// float32 array, and the deterministic column sums behind its parameter
// gradients (and the LSTM's bias gradient).
//
// Rows: one warp per row up to 1024 elements (the row in registers), one
// block per row beyond (the row cached in shared memory when it fits), as in
// softmax.cu; a one-thread-per-row reference beside them. The statistics are
// the CPU's: mean = sum(x) / n, var = sum((x - mean)^2) / n (two passes, no
// E[x^2] - mean^2 cancellation), rstd = 1 / sqrt(var + eps) in double.
//
// Column sums: blocks of 32 columns x 8 row lanes; block (tile, chunk) sums
// the rows of one chunk into per-column partials (the 8 lanes combined in a
// fixed order through shared memory), then one thread per column adds the
// chunk partials in chunk order. No atomics, and the chunking depends on the
// row count only, so the result is the same on every run and device.
#include <algorithm>

#include "cuda/norm/norm.h"
#include "cuda/norm/reduce.cuh"
#include "cuda/norm/rows.cuh"

namespace pyfastnn {
namespace cuda {

namespace {

__device__ __forceinline__ float inverse_std(float var, double eps) {
  return static_cast<float>(1.0 / sqrt(static_cast<double>(var) + eps));
}

template <int K>
__global__ void layer_norm_warp_kernel(const float* __restrict__ x, const float* __restrict__ w,
                                       const float* __restrict__ b, float* __restrict__ y, float* __restrict__ mean,
                                       float* __restrict__ rstd, std::int64_t rows, int n, double eps) {
  const int lane = threadIdx.x & 31;
  const int warps = blockDim.x >> 5;
  for (std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * warps + (threadIdx.x >> 5); row < rows;
       row += static_cast<std::int64_t>(gridDim.x) * warps) {
    const float* xr = x + row * n;
    float* yr = y + row * n;
    float v[K];
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int i = lane + 32 * k;
      v[k] = i < n ? xr[i] : 0.f;
      s += v[k];
    }
    const float mu = warp_sum(s) / static_cast<float>(n);
    float q = 0.f;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      if (lane + 32 * k < n) {
        const float d = v[k] - mu;
        q += d * d;
      }
    }
    const float rs = inverse_std(warp_sum(q) / static_cast<float>(n), eps);
    if (lane == 0) {
      mean[row] = mu;
      rstd[row] = rs;
    }
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int i = lane + 32 * k;
      if (i < n) {
        float o = (v[k] - mu) * rs;
        if (w) o = o * w[i];
        if (b) o = o + b[i];
        yr[i] = o;
      }
    }
  }
}

__global__ void __launch_bounds__(1024)
    layer_norm_block_kernel(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ b,
        float* __restrict__ y, float* __restrict__ mean, float* __restrict__ rstd, std::int64_t rows, std::int64_t n,
        double eps, bool cached) {
  extern __shared__ float row_cache[];
  __shared__ float scratch[32];
  for (std::int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* xr = x + row * n;
    float* yr = y + row * n;
    float s = 0.f;
#pragma unroll 4
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float v = xr[i];
      if (cached) row_cache[i] = v;
      s += v;
    }
    const float mu = block_sum(s, scratch) / static_cast<float>(n);
    float q = 0.f;
#pragma unroll 4
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float d = (cached ? row_cache[i] : xr[i]) - mu;
      q += d * d;
    }
    const float rs = inverse_std(block_sum(q, scratch) / static_cast<float>(n), eps);
    if (threadIdx.x == 0) {
      mean[row] = mu;
      rstd[row] = rs;
    }
#pragma unroll 4
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      float o = ((cached ? row_cache[i] : xr[i]) - mu) * rs;
      if (w) o = o * w[i];
      if (b) o = o + b[i];
      yr[i] = o;
    }
  }
}

__global__ void layer_norm_reference_kernel(const float* x, const float* w, const float* b, float* y, float* mean,
                                            float* rstd, std::int64_t rows, std::int64_t n, double eps) {
  const std::int64_t row = global_thread();
  if (row >= rows) return;
  const float* xr = x + row * n;
  float s = 0.f;
  for (std::int64_t i = 0; i < n; ++i) s += xr[i];
  const float mu = s / static_cast<float>(n);
  float q = 0.f;
  for (std::int64_t i = 0; i < n; ++i) q += (xr[i] - mu) * (xr[i] - mu);
  const float rs = inverse_std(q / static_cast<float>(n), eps);
  mean[row] = mu;
  rstd[row] = rs;
  for (std::int64_t i = 0; i < n; ++i) {
    float o = (xr[i] - mu) * rs;
    if (w) o = o * w[i];
    if (b) o = o + b[i];
    y[row * n + i] = o;
  }
}

template <int K>
__global__ void layer_norm_backward_warp_kernel(const float* __restrict__ g, const float* __restrict__ x,
                                                const float* __restrict__ mean, const float* __restrict__ rstd,
                                                const float* __restrict__ w, float* __restrict__ gx,
                                                std::int64_t rows, int n) {
  const int lane = threadIdx.x & 31;
  const int warps = blockDim.x >> 5;
  for (std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * warps + (threadIdx.x >> 5); row < rows;
       row += static_cast<std::int64_t>(gridDim.x) * warps) {
    const std::int64_t base = row * n;
    const float mu = mean[row], rs = rstd[row];
    float wg[K], xhat[K];
    float sum_wg = 0.f, sum_wgx = 0.f;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int i = lane + 32 * k;
      wg[k] = 0.f;
      xhat[k] = 0.f;
      if (i < n) {
        wg[k] = w ? g[base + i] * w[i] : g[base + i];
        xhat[k] = (x[base + i] - mu) * rs;
      }
      sum_wg += wg[k];
      sum_wgx += wg[k] * xhat[k];
    }
    const float inv_n = 1.f / static_cast<float>(n);
    const float a = warp_sum(sum_wg) * inv_n, c = warp_sum(sum_wgx) * inv_n;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int i = lane + 32 * k;
      if (i < n) gx[base + i] = rs * (wg[k] - a - xhat[k] * c);
    }
  }
}

__global__ void __launch_bounds__(1024)
    layer_norm_backward_block_kernel(const float* __restrict__ g, const float* __restrict__ x,
        const float* __restrict__ mean, const float* __restrict__ rstd, const float* __restrict__ w,
        float* __restrict__ gx, std::int64_t rows, std::int64_t n, bool cached) {
  extern __shared__ float row_cache[];  // w*g then xhat, n floats each, when cached
  __shared__ float scratch[32];
  float* wg_cache = row_cache;
  float* xhat_cache = row_cache + (cached ? n : 0);
  for (std::int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const std::int64_t base = row * n;
    const float mu = mean[row], rs = rstd[row];
    float sum_wg = 0.f, sum_wgx = 0.f;
#pragma unroll 4
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float wg = w ? g[base + i] * w[i] : g[base + i];
      const float xhat = (x[base + i] - mu) * rs;
      if (cached) {
        wg_cache[i] = wg;
        xhat_cache[i] = xhat;
      }
      sum_wg += wg;
      sum_wgx += wg * xhat;
    }
    const float inv_n = 1.f / static_cast<float>(n);
    const float a = block_sum(sum_wg, scratch) * inv_n;
    const float c = block_sum(sum_wgx, scratch) * inv_n;
#pragma unroll 4
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float wg = cached ? wg_cache[i] : (w ? g[base + i] * w[i] : g[base + i]);
      const float xhat = cached ? xhat_cache[i] : (x[base + i] - mu) * rs;
      gx[base + i] = rs * (wg - a - xhat * c);
    }
  }
}

__global__ void layer_norm_backward_reference_kernel(const float* g, const float* x, const float* mean,
                                                     const float* rstd, const float* w, float* gx, std::int64_t rows,
                                                     std::int64_t n) {
  const std::int64_t row = global_thread();
  if (row >= rows) return;
  const std::int64_t base = row * n;
  const float mu = mean[row], rs = rstd[row];
  float sum_wg = 0.f, sum_wgx = 0.f;
  for (std::int64_t i = 0; i < n; ++i) {
    const float wg = w ? g[base + i] * w[i] : g[base + i];
    sum_wg += wg;
    sum_wgx += wg * ((x[base + i] - mu) * rs);
  }
  const float a = sum_wg / static_cast<float>(n), c = sum_wgx / static_cast<float>(n);
  for (std::int64_t i = 0; i < n; ++i) {
    const float wg = w ? g[base + i] * w[i] : g[base + i];
    gx[base + i] = rs * (wg - a - ((x[base + i] - mu) * rs) * c);
  }
}

// ------------------------------------------------------------ column sums
constexpr int kColumnTile = 32;
constexpr int kRowLanes = 8;
constexpr std::int64_t kMaxChunks = 128;

std::int64_t rows_per_chunk(std::int64_t rows) {
  std::int64_t per = std::max<std::int64_t>(64, (rows + kMaxChunks - 1) / kMaxChunks);
  return (per + kRowLanes - 1) / kRowLanes * kRowLanes;
}

// Partials of one row chunk for 32 columns: sum of a (Normalized = false), or
// sums of g * xhat and of g (Normalized = true, a = g).
template <bool Normalized>
__global__ void column_partials_kernel(const float* __restrict__ a, const float* __restrict__ x,
                                       const float* __restrict__ mean, const float* __restrict__ rstd,
                                       float* __restrict__ part_first, float* __restrict__ part_second,
                                       std::int64_t rows, std::int64_t n, std::int64_t chunk_rows) {
  __shared__ float first[kRowLanes][kColumnTile + 1];
  __shared__ float second[kRowLanes][kColumnTile + 1];
  const std::int64_t col = static_cast<std::int64_t>(blockIdx.x) * kColumnTile + threadIdx.x;
  const std::int64_t chunk = blockIdx.y;
  const std::int64_t r0 = chunk * chunk_rows;
  const std::int64_t r1 = rows < r0 + chunk_rows ? rows : r0 + chunk_rows;
  float s1 = 0.f, s2 = 0.f;
  if (col < n) {
    for (std::int64_t r = r0 + threadIdx.y; r < r1; r += kRowLanes) {
      const float v = a[r * n + col];
      if (Normalized) {
        s1 += v * ((x[r * n + col] - mean[r]) * rstd[r]);
        s2 += v;
      } else {
        s1 += v;
      }
    }
  }
  first[threadIdx.y][threadIdx.x] = s1;
  second[threadIdx.y][threadIdx.x] = s2;
  __syncthreads();
  if (threadIdx.y == 0 && col < n) {
    float t1 = 0.f, t2 = 0.f;
#pragma unroll
    for (int l = 0; l < kRowLanes; ++l) {
      t1 += first[l][threadIdx.x];
      t2 += second[l][threadIdx.x];
    }
    part_first[chunk * n + col] = t1;
    if (Normalized) part_second[chunk * n + col] = t2;
  }
}

__global__ void column_finish_kernel(const float* __restrict__ part, float* __restrict__ out, std::int64_t chunks,
                                     std::int64_t n) {
  const std::int64_t stride = grid_threads();
  for (std::int64_t col = global_thread(); col < n; col += stride) {
    float t = 0.f;
    for (std::int64_t c = 0; c < chunks; ++c) t += part[c * n + col];
    out[col] = t;
  }
}

template <bool Normalized>
cudaError_t column_reduce(const float* a, const float* x, const float* mean, const float* rstd, float* out_first,
                          float* out_second, std::int64_t rows, std::int64_t n, float* workspace,
                          cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const std::int64_t chunks = column_sum_chunks(rows);
  if (chunks == 0) {  // no rows: the sums are zero
    cudaError_t err = cudaMemsetAsync(out_first, 0, static_cast<std::size_t>(n) * sizeof(float), stream);
    if (err == cudaSuccess && Normalized)
      err = cudaMemsetAsync(out_second, 0, static_cast<std::size_t>(n) * sizeof(float), stream);
    return err;
  }
  float* part_first = workspace;
  float* part_second = workspace + chunks * n;
  const dim3 grid(static_cast<unsigned>((n + kColumnTile - 1) / kColumnTile), static_cast<unsigned>(chunks));
  column_partials_kernel<Normalized><<<grid, dim3(kColumnTile, kRowLanes), 0, stream>>>(
      a, x, mean, rstd, part_first, part_second, rows, n, rows_per_chunk(rows));
  column_finish_kernel<<<grid_for(n, 256), 256, 0, stream>>>(part_first, out_first, chunks, n);
  if (Normalized) column_finish_kernel<<<grid_for(n, 256), 256, 0, stream>>>(part_second, out_second, chunks, n);
  return cudaGetLastError();
}

}  // namespace

cudaError_t layer_norm_forward(const float* x, const float* w, const float* b, float* y, float* mean, float* rstd,
                               std::int64_t rows, std::int64_t n, double eps, RowImpl impl, cudaStream_t stream) {
  if (rows <= 0 || n <= 0) return cudaSuccess;
  if (impl == RowImpl::reference) {
    layer_norm_reference_kernel<<<static_cast<unsigned>((rows + 127) / 128), 128, 0, stream>>>(x, w, b, y, mean, rstd,
                                                                                              rows, n, eps);
  } else if (use_warp_path(impl, n)) {
    with_lane_count(n, [&](auto k) {
      layer_norm_warp_kernel<decltype(k)::value><<<warp_path_grid(rows), kWarpPathThreads, 0, stream>>>(
          x, w, b, y, mean, rstd, rows, static_cast<int>(n), eps);
    });
  } else {
    const bool cached = n * static_cast<std::int64_t>(sizeof(float)) <= kRowCacheBytes;
    const std::size_t smem = cached ? static_cast<std::size_t>(n) * sizeof(float) : 0;
    layer_norm_block_kernel<<<block_path_grid(rows), block_path_threads(n), smem, stream>>>(x, w, b, y, mean, rstd,
                                                                                           rows, n, eps, cached);
  }
  return cudaGetLastError();
}

cudaError_t layer_norm_backward_input(const float* grad_y, const float* x, const float* mean, const float* rstd,
                                      const float* w, float* gx, std::int64_t rows, std::int64_t n, RowImpl impl,
                                      cudaStream_t stream) {
  if (rows <= 0 || n <= 0) return cudaSuccess;
  if (impl == RowImpl::reference) {
    layer_norm_backward_reference_kernel<<<static_cast<unsigned>((rows + 127) / 128), 128, 0, stream>>>(
        grad_y, x, mean, rstd, w, gx, rows, n);
  } else if (use_warp_path(impl, n)) {
    with_lane_count(n, [&](auto k) {
      layer_norm_backward_warp_kernel<decltype(k)::value><<<warp_path_grid(rows), kWarpPathThreads, 0, stream>>>(
          grad_y, x, mean, rstd, w, gx, rows, static_cast<int>(n));
    });
  } else {
    const bool cached = 2 * n * static_cast<std::int64_t>(sizeof(float)) <= kRowCacheBytes;
    const std::size_t smem = cached ? 2 * static_cast<std::size_t>(n) * sizeof(float) : 0;
    layer_norm_backward_block_kernel<<<block_path_grid(rows), block_path_threads(n), smem, stream>>>(
        grad_y, x, mean, rstd, w, gx, rows, n, cached);
  }
  return cudaGetLastError();
}

std::int64_t column_sum_chunks(std::int64_t rows) {
  if (rows <= 0) return 0;
  const std::int64_t per = rows_per_chunk(rows);
  return (rows + per - 1) / per;
}

std::int64_t column_sum_workspace(std::int64_t rows, std::int64_t n) { return column_sum_chunks(rows) * n; }

cudaError_t column_sums(const float* a, float* out, std::int64_t rows, std::int64_t n, float* workspace,
                        cudaStream_t stream) {
  return column_reduce<false>(a, nullptr, nullptr, nullptr, out, nullptr, rows, n, workspace, stream);
}

cudaError_t layer_norm_backward_params(const float* grad_y, const float* x, const float* mean, const float* rstd,
                                       float* gw, float* gb, std::int64_t rows, std::int64_t n, float* workspace,
                                       cudaStream_t stream) {
  return column_reduce<true>(grad_y, x, mean, rstd, gw, gb, rows, n, workspace, stream);
}

}  // namespace cuda
}  // namespace pyfastnn
