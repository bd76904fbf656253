// LSTM step kernels: one thread per (batch row, hidden unit), grid-stride over
// B * H, so a warp reads 32 consecutive units of each of the four gate blocks
// (four coalesced streams) and writes them back in place. The cell math is the
// CPU kernel's (cpu/lstm/lstm_impl.h), factor for factor.
#include "cuda/elementwise/launch.cuh"
#include "cuda/lstm/lstm_cell.h"

namespace pyfastnn {
namespace cuda {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float sigmoid(float v) { return 1.f / (1.f + expf(-v)); }

__global__ void lstm_cell_forward_kernel(float* __restrict__ gates, const float* __restrict__ hproj,
                                         const float* __restrict__ c_prev, float* __restrict__ c,
                                         float* __restrict__ h, std::int64_t B, std::int64_t H) {
  const std::int64_t total = B * H, stride = grid_threads();
  for (std::int64_t e = global_thread(); e < total; e += stride) {
    const std::int64_t b = e / H, j = e - b * H;
    float* G = gates + b * 4 * H;
    const float* P = hproj ? hproj + b * 4 * H : nullptr;
    const float pre_i = G[j] + (P ? P[j] : 0.f);
    const float pre_f = G[H + j] + (P ? P[H + j] : 0.f);
    const float pre_g = G[2 * H + j] + (P ? P[2 * H + j] : 0.f);
    const float pre_o = G[3 * H + j] + (P ? P[3 * H + j] : 0.f);
    const float i = sigmoid(pre_i), f = sigmoid(pre_f), g = tanhf(pre_g), o = sigmoid(pre_o);
    const float cn = f * c_prev[e] + i * g;
    G[j] = i;
    G[H + j] = f;
    G[2 * H + j] = g;
    G[3 * H + j] = o;
    c[e] = cn;
    h[e] = o * tanhf(cn);
  }
}

__global__ void lstm_cell_backward_kernel(const float* __restrict__ dh_next, const float* __restrict__ grad_y,
                                          float* __restrict__ dc, const float* __restrict__ gates,
                                          const float* __restrict__ c_prev, const float* __restrict__ c,
                                          float* __restrict__ dG, std::int64_t B, std::int64_t H) {
  const std::int64_t total = B * H, stride = grid_threads();
  for (std::int64_t e = global_thread(); e < total; e += stride) {
    const std::int64_t b = e / H, j = e - b * H;
    const float* G = gates + b * 4 * H;
    float* D = dG + b * 4 * H;
    const float i = G[j], f = G[H + j], g = G[2 * H + j], o = G[3 * H + j];
    const float tc = tanhf(c[e]);
    const float dh = grad_y ? dh_next[e] + grad_y[e] : dh_next[e];
    const float dcv = dc[e] + dh * o * (1.f - tc) * (1.f + tc);
    D[j] = dcv * g * i * (1.f - i);
    D[H + j] = dcv * c_prev[e] * f * (1.f - f);
    D[2 * H + j] = dcv * i * (1.f - g) * (1.f + g);
    D[3 * H + j] = dh * tc * o * (1.f - o);
    dc[e] = dcv * f;
  }
}

}  // namespace

cudaError_t lstm_cell_forward(float* gates, const float* hproj, const float* c_prev, float* c, float* h,
                              std::int64_t B, std::int64_t H, cudaStream_t stream) {
  if (B <= 0 || H <= 0) return cudaSuccess;
  lstm_cell_forward_kernel<<<grid_for(B * H, kThreads), kThreads, 0, stream>>>(gates, hproj, c_prev, c, h, B, H);
  return cudaGetLastError();
}

cudaError_t lstm_cell_backward(const float* dh_next, const float* grad_y, float* dc, const float* gates,
                               const float* c_prev, const float* c, float* dG, std::int64_t B, std::int64_t H,
                               cudaStream_t stream) {
  if (B <= 0 || H <= 0) return cudaSuccess;
  lstm_cell_backward_kernel<<<grid_for(B * H, kThreads), kThreads, 0, stream>>>(dh_next, grad_y, dc, gates, c_prev,
                                                                                c, dG, B, H);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace pyfastnn
