// cross_entropy: per-row log-sum-exp + NLL, then a one-block total (two
// passes, no float atomics, a fixed order: the loss is the same on every run).
// Rows use the softmax layout: one warp per row up to 1024 classes (the row
// in registers), one block per row beyond (re-read through L1/L2: each pass is
// a plain stream), a one-thread-per-row reference beside them. The math is
// the CPU kernel's (cpu/rowwise/rowwise_impl.h): max and sum of exp in float,
// lse = max + log(sum) and the row loss in double.
#include "cuda/loss/cross_entropy.h"
#include "cuda/norm/reduce.cuh"
#include "cuda/norm/rows.cuh"

namespace pyfastnn {
namespace cuda {

namespace {

__device__ __forceinline__ bool counted(std::int64_t t, std::int64_t n, std::int64_t ignore) {
  return t != ignore && t >= 0 && t < n;
}

__device__ __forceinline__ double row_loss_of(float m, float s, float x_target, float sum_x, std::int64_t n,
                                              double smoothing) {
  const double lse = static_cast<double>(m) + log(static_cast<double>(s));
  double loss = (1.0 - smoothing) * (lse - static_cast<double>(x_target));
  if (smoothing != 0.0) loss += smoothing * (lse - static_cast<double>(sum_x) / static_cast<double>(n));
  return loss;
}

template <int K>
__global__ void ce_rows_warp_kernel(const float* __restrict__ logits, const std::int64_t* __restrict__ target,
                                    std::int64_t rows, int n, std::int64_t ignore, double smoothing,
                                    double* __restrict__ row_loss) {
  const int lane = threadIdx.x & 31;
  const int warps = blockDim.x >> 5;
  for (std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * warps + (threadIdx.x >> 5); row < rows;
       row += static_cast<std::int64_t>(gridDim.x) * warps) {
    const std::int64_t t = target[row];
    if (!counted(t, n, ignore)) {
      if (lane == 0) row_loss[row] = 0.0;
      continue;
    }
    const float* xr = logits + row * n;
    float v[K];
    float m = -INFINITY, sum_x = 0.f;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int i = lane + 32 * k;
      v[k] = i < n ? xr[i] : -INFINITY;
      m = fmaxf(m, v[k]);
      if (i < n) sum_x += v[k];
    }
    m = warp_max(m);
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < K; ++k)
      if (lane + 32 * k < n) s += expf(v[k] - m);
    s = warp_sum(s);
    if (smoothing != 0.0) sum_x = warp_sum(sum_x);
    if (lane == 0) row_loss[row] = row_loss_of(m, s, xr[t], sum_x, n, smoothing);
  }
}

__global__ void __launch_bounds__(1024)
    ce_rows_block_kernel(const float* __restrict__ logits, const std::int64_t* __restrict__ target, std::int64_t rows,
        std::int64_t n, std::int64_t ignore, double smoothing, double* __restrict__ row_loss) {
  __shared__ float scratch[32];
  for (std::int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const std::int64_t t = target[row];
    if (!counted(t, n, ignore)) {  // uniform over the block: every thread skips the row
      if (threadIdx.x == 0) row_loss[row] = 0.0;
      continue;
    }
    const float* xr = logits + row * n;
    float m = -INFINITY, sum_x = 0.f;
#pragma unroll 4
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const float v = xr[i];
      m = fmaxf(m, v);
      sum_x += v;
    }
    m = block_max(m, scratch);
    float s = 0.f;
#pragma unroll 4
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) s += expf(xr[i] - m);
    s = block_sum(s, scratch);
    if (smoothing != 0.0) sum_x = block_sum(sum_x, scratch);
    if (threadIdx.x == 0) row_loss[row] = row_loss_of(m, s, xr[t], sum_x, n, smoothing);
  }
}

__global__ void ce_rows_reference_kernel(const float* logits, const std::int64_t* target, std::int64_t rows,
                                         std::int64_t n, std::int64_t ignore, double smoothing, double* row_loss) {
  const std::int64_t row = global_thread();
  if (row >= rows) return;
  const std::int64_t t = target[row];
  if (!counted(t, n, ignore)) {
    row_loss[row] = 0.0;
    return;
  }
  const float* xr = logits + row * n;
  float m = -INFINITY, s = 0.f, sum_x = 0.f;
  for (std::int64_t i = 0; i < n; ++i) m = fmaxf(m, xr[i]);
  for (std::int64_t i = 0; i < n; ++i) {
    s += expf(xr[i] - m);
    sum_x += xr[i];
  }
  row_loss[row] = row_loss_of(m, s, xr[t], sum_x, n, smoothing);
}

constexpr int kTotalThreads = 1024;

__global__ void __launch_bounds__(1024)
    ce_totals_kernel(const double* __restrict__ row_loss, const std::int64_t* __restrict__ target, std::int64_t rows,
        std::int64_t n, std::int64_t ignore, double* __restrict__ out) {
  __shared__ double scratch[32];
  double loss = 0.0, valid = 0.0, bad = 0.0;
  for (std::int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    const std::int64_t t = target[r];
    if (counted(t, n, ignore)) {
      valid += 1.0;
      if (row_loss) loss += row_loss[r];
    } else if (t != ignore) {
      bad += 1.0;
    }
  }
  loss = block_reduce(loss, scratch, SumOp{}, 0.0);
  valid = block_reduce(valid, scratch, SumOp{}, 0.0);
  bad = block_reduce(bad, scratch, SumOp{}, 0.0);
  if (threadIdx.x == 0) {
    out[0] = loss;
    out[1] = valid;
    out[2] = bad;
  }
}

// The gradient constants, rounded to float once per launch like the CPU's.
struct GradScale {
  float scale;     // grad / counted rows
  float uniform;   // scale * smoothing / n
  float target;    // scale * (1 - smoothing), taken off at the target class
};

template <int K>
__global__ void ce_backward_warp_kernel(const float* __restrict__ logits, const std::int64_t* __restrict__ target,
                                        std::int64_t rows, int n, std::int64_t ignore, GradScale c,
                                        float* __restrict__ grad) {
  const int lane = threadIdx.x & 31;
  const int warps = blockDim.x >> 5;
  for (std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * warps + (threadIdx.x >> 5); row < rows;
       row += static_cast<std::int64_t>(gridDim.x) * warps) {
    const std::int64_t t = target[row];
    float* gr = grad + row * n;
    if (!counted(t, n, ignore)) {
#pragma unroll
      for (int k = 0; k < K; ++k)
        if (lane + 32 * k < n) gr[lane + 32 * k] = 0.f;
      continue;
    }
    const float* xr = logits + row * n;
    float v[K];
    float m = -INFINITY;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int i = lane + 32 * k;
      v[k] = i < n ? xr[i] : -INFINITY;
      m = fmaxf(m, v[k]);
    }
    m = warp_max(m);
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < K; ++k)
      if (lane + 32 * k < n) s += expf(v[k] - m);
    s = warp_sum(s);
    const float lse = static_cast<float>(static_cast<double>(m) + log(static_cast<double>(s)));
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int i = lane + 32 * k;
      if (i < n) {
        float o = expf(v[k] - lse) * c.scale - c.uniform;
        if (i == t) o -= c.target;
        gr[i] = o;
      }
    }
  }
}

__global__ void __launch_bounds__(1024)
    ce_backward_block_kernel(const float* __restrict__ logits, const std::int64_t* __restrict__ target,
        std::int64_t rows, std::int64_t n, std::int64_t ignore, GradScale c, float* __restrict__ grad) {
  __shared__ float scratch[32];
  for (std::int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const std::int64_t t = target[row];
    float* gr = grad + row * n;
    if (!counted(t, n, ignore)) {
#pragma unroll 4
      for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) gr[i] = 0.f;
      continue;
    }
    const float* xr = logits + row * n;
    float m = -INFINITY;
#pragma unroll 4
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, xr[i]);
    m = block_max(m, scratch);
    float s = 0.f;
#pragma unroll 4
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) s += expf(xr[i] - m);
    s = block_sum(s, scratch);
    const float lse = static_cast<float>(static_cast<double>(m) + log(static_cast<double>(s)));
#pragma unroll 4
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      float o = expf(xr[i] - lse) * c.scale - c.uniform;
      if (i == t) o -= c.target;
      gr[i] = o;
    }
  }
}

__global__ void ce_backward_reference_kernel(const float* logits, const std::int64_t* target, std::int64_t rows,
                                             std::int64_t n, std::int64_t ignore, GradScale c, float* grad) {
  const std::int64_t row = global_thread();
  if (row >= rows) return;
  const std::int64_t t = target[row];
  const float* xr = logits + row * n;
  float* gr = grad + row * n;
  if (!counted(t, n, ignore)) {
    for (std::int64_t i = 0; i < n; ++i) gr[i] = 0.f;
    return;
  }
  float m = -INFINITY, s = 0.f;
  for (std::int64_t i = 0; i < n; ++i) m = fmaxf(m, xr[i]);
  for (std::int64_t i = 0; i < n; ++i) s += expf(xr[i] - m);
  const float lse = static_cast<float>(static_cast<double>(m) + log(static_cast<double>(s)));
  for (std::int64_t i = 0; i < n; ++i) gr[i] = expf(xr[i] - lse) * c.scale - c.uniform;
  gr[t] -= c.target;
}

}  // namespace

cudaError_t cross_entropy_rows(const float* logits, const std::int64_t* target, std::int64_t rows, std::int64_t n,
                               std::int64_t ignore_index, double smoothing, double* row_loss, RowImpl impl,
                               cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (impl == RowImpl::reference) {
    ce_rows_reference_kernel<<<static_cast<unsigned>((rows + 127) / 128), 128, 0, stream>>>(
        logits, target, rows, n, ignore_index, smoothing, row_loss);
  } else if (use_warp_path(impl, n)) {
    with_lane_count(n, [&](auto k) {
      ce_rows_warp_kernel<decltype(k)::value><<<warp_path_grid(rows), kWarpPathThreads, 0, stream>>>(
          logits, target, rows, static_cast<int>(n), ignore_index, smoothing, row_loss);
    });
  } else {
    ce_rows_block_kernel<<<block_path_grid(rows), block_path_threads(n), 0, stream>>>(logits, target, rows, n,
                                                                                      ignore_index, smoothing,
                                                                                      row_loss);
  }
  return cudaGetLastError();
}

cudaError_t cross_entropy_totals(const double* row_loss, const std::int64_t* target, std::int64_t rows,
                                 std::int64_t n, std::int64_t ignore_index, double* out, cudaStream_t stream) {
  ce_totals_kernel<<<1, kTotalThreads, 0, stream>>>(row_loss, target, rows, n, ignore_index, out);
  return cudaGetLastError();
}

cudaError_t cross_entropy_backward(const float* logits, const std::int64_t* target, std::int64_t rows,
                                   std::int64_t n, std::int64_t ignore_index, double smoothing, double scale,
                                   float* grad, RowImpl impl, cudaStream_t stream) {
  if (rows <= 0 || n <= 0) return cudaSuccess;
  const GradScale c{static_cast<float>(scale), static_cast<float>(scale * smoothing / static_cast<double>(n)),
                    static_cast<float>(scale * (1.0 - smoothing))};
  if (impl == RowImpl::reference) {
    ce_backward_reference_kernel<<<static_cast<unsigned>((rows + 127) / 128), 128, 0, stream>>>(
        logits, target, rows, n, ignore_index, c, grad);
  } else if (use_warp_path(impl, n)) {
    with_lane_count(n, [&](auto k) {
      ce_backward_warp_kernel<decltype(k)::value><<<warp_path_grid(rows), kWarpPathThreads, 0, stream>>>(
          logits, target, rows, static_cast<int>(n), ignore_index, c, grad);
    });
  } else {
    ce_backward_block_kernel<<<block_path_grid(rows), block_path_threads(n), 0, stream>>>(logits, target, rows, n,
                                                                                          ignore_index, c, grad);
  }
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace pyfastnn
