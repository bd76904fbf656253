// Depthwise convolutions (C/groups == 1, K/groups = the channel multiplier):
// each output channel k reads one input channel, c = k / (K/groups), so a
// GEMM per group would be one channel wide. Direct kernels instead: one
// thread per output (forward) or per input element (grad x), consecutive
// threads on consecutive columns so the loads of a warp are contiguous at
// stride 1; the filter taps come from L1 (every thread of a row of a plane
// reads the same R*S weights). grad w is a reduction over all pixels per
// weight: one block per (channel, tap), a fixed-order tree sum.
#include "cuda/conv/conv_common.cuh"
#include "cuda/conv/conv_direct.h"
#include "cuda/norm/reduce.cuh"

namespace pyfastnn {
namespace cuda {
namespace conv_detail {

namespace {

struct DirectParams {
  int C, H, W, K, P, Q, R, S, sh, sw, ph, pw, dh, dw, Kg;
};

DirectParams direct_params(const ConvShape& s) {
  DirectParams d;
  d.C = static_cast<int>(s.C);
  d.H = static_cast<int>(s.H);
  d.W = static_cast<int>(s.W);
  d.K = static_cast<int>(s.K);
  d.P = static_cast<int>(s.P);
  d.Q = static_cast<int>(s.Q);
  d.R = static_cast<int>(s.R);
  d.S = static_cast<int>(s.S);
  d.sh = static_cast<int>(s.SH);
  d.sw = static_cast<int>(s.SW);
  d.ph = static_cast<int>(s.PH);
  d.pw = static_cast<int>(s.PW);
  d.dh = static_cast<int>(s.DH);
  d.dw = static_cast<int>(s.DW);
  d.Kg = static_cast<int>(s.K / s.groups);
  return d;
}

constexpr int kThreads = 256;

unsigned grid_for(std::int64_t total) {
  const std::int64_t want = ceil_div(total, kThreads);
  return static_cast<unsigned>(want < (1 << 20) ? want : (1 << 20));
}

__global__ void __launch_bounds__(kThreads) depthwise_forward_kernel(const float* __restrict__ x,
                                                                     const float* __restrict__ w,
                                                                     const float* __restrict__ bias,
                                                                     float* __restrict__ y, std::int64_t total,
                                                                     DirectParams d) {
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t idx = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += step) {
    const int q = static_cast<int>(idx % d.Q);
    std::int64_t t = idx / d.Q;
    const int p = static_cast<int>(t % d.P);
    t /= d.P;
    const int k = static_cast<int>(t % d.K);
    const std::int64_t n = t / d.K;
    const float* xp = x + (n * d.C + k / d.Kg) * (static_cast<std::int64_t>(d.H) * d.W);
    const float* wk = w + static_cast<std::int64_t>(k) * d.R * d.S;
    float acc = 0.f;
    for (int r = 0; r < d.R; ++r) {
      const int ih = p * d.sh - d.ph + r * d.dh;
      if (static_cast<unsigned>(ih) >= static_cast<unsigned>(d.H)) continue;
      for (int s = 0; s < d.S; ++s) {
        const int iw = q * d.sw - d.pw + s * d.dw;
        if (static_cast<unsigned>(iw) < static_cast<unsigned>(d.W))
          acc = fmaf(xp[ih * d.W + iw], wk[r * d.S + s], acc);
      }
    }
    y[idx] = bias != nullptr ? acc + bias[k] : acc;
  }
}

__global__ void __launch_bounds__(kThreads) depthwise_grad_x_kernel(const float* __restrict__ gy,
                                                                    const float* __restrict__ w,
                                                                    float* __restrict__ gx, std::int64_t total,
                                                                    DirectParams d) {
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  const int pq = d.P * d.Q;
  for (std::int64_t idx = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += step) {
    const int iw = static_cast<int>(idx % d.W);
    std::int64_t t = idx / d.W;
    const int ih = static_cast<int>(t % d.H);
    t /= d.H;
    const int c = static_cast<int>(t % d.C);
    const std::int64_t n = t / d.C;
    float acc = 0.f;
    for (int j = 0; j < d.Kg; ++j) {
      const int k = c * d.Kg + j;
      const float* gyp = gy + (n * d.K + k) * pq;
      const float* wk = w + static_cast<std::int64_t>(k) * d.R * d.S;
      for (int r = 0; r < d.R; ++r) {
        const int hp = ih + d.ph - r * d.dh;
        if (hp < 0) break;  // only falls further with r
        const int p = hp / d.sh;
        if (p * d.sh != hp || p >= d.P) continue;
        for (int s = 0; s < d.S; ++s) {
          const int wp = iw + d.pw - s * d.dw;
          if (wp < 0) break;
          const int q = wp / d.sw;
          if (q * d.sw == wp && q < d.Q) acc = fmaf(gyp[p * d.Q + q], wk[r * d.S + s], acc);
        }
      }
    }
    gx[idx] = acc;
  }
}

__global__ void __launch_bounds__(kThreads) depthwise_grad_w_kernel(const float* __restrict__ gy,
                                                                    const float* __restrict__ x,
                                                                    float* __restrict__ gw, int N, DirectParams d) {
  __shared__ float scratch[32];
  const int taps = d.R * d.S;
  const int k = blockIdx.x / taps;
  const int tap = blockIdx.x - k * taps;
  const int r = tap / d.S;
  const int s = tap - r * d.S;
  const int c = k / d.Kg;
  const int pq = d.P * d.Q;
  const std::int64_t plane = static_cast<std::int64_t>(d.H) * d.W;
  const std::int64_t total = static_cast<std::int64_t>(N) * pq;
  float acc = 0.f;
  for (std::int64_t idx = threadIdx.x; idx < total; idx += kThreads) {
    const std::int64_t n = idx / pq;
    const int pix = static_cast<int>(idx - n * pq);
    const int p = pix / d.Q;
    const int q = pix - p * d.Q;
    const int ih = p * d.sh - d.ph + r * d.dh;
    const int iw = q * d.sw - d.pw + s * d.dw;
    if (static_cast<unsigned>(ih) < static_cast<unsigned>(d.H) &&
        static_cast<unsigned>(iw) < static_cast<unsigned>(d.W))
      acc = fmaf(gy[(n * d.K + k) * pq + pix], x[(n * d.C + c) * plane + ih * d.W + iw], acc);
  }
  const float sum = block_sum(acc, scratch);
  if (threadIdx.x == 0) gw[blockIdx.x] = sum;
}

}  // namespace

cudaError_t depthwise_forward(const ConvShape& s, const float* x, const float* w, const float* bias, float* y,
                              cudaStream_t stream) {
  const std::int64_t total = s.N * s.K * s.P * s.Q;
  if (total == 0) return cudaSuccess;
  depthwise_forward_kernel<<<grid_for(total), kThreads, 0, stream>>>(x, w, bias, y, total, direct_params(s));
  return cudaGetLastError();
}

cudaError_t depthwise_backward_data(const ConvShape& s, const float* grad_y, const float* w, float* grad_x,
                                    cudaStream_t stream) {
  const std::int64_t total = s.N * s.C * s.H * s.W;
  if (total == 0) return cudaSuccess;
  depthwise_grad_x_kernel<<<grid_for(total), kThreads, 0, stream>>>(grad_y, w, grad_x, total, direct_params(s));
  return cudaGetLastError();
}

cudaError_t depthwise_backward_filter(const ConvShape& s, const float* grad_y, const float* x, float* grad_w,
                                      cudaStream_t stream) {
  const std::int64_t blocks = s.K * s.R * s.S;
  if (blocks == 0) return cudaSuccess;
  depthwise_grad_w_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      grad_y, x, grad_w, static_cast<int>(s.N), direct_params(s));
  return cudaGetLastError();
}

}  // namespace conv_detail
}  // namespace cuda
}  // namespace pyfastnn
