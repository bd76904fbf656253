// Gradient of the weights as an implicit GEMM, and the gradient of the bias.
//
// Per group g:  C[m][n] = sum_pix A[m][pix] * B[pix][n]
//   m   = filter column (c, r, s), OIHW order   M = Cg*R*S
//   n   = output channel within the group      Kg
//   pix = output pixel (image, p, q)           N*P*Q
//   A[(c,r,s)][pix] = x[img, g*Cg+c, p*sh-ph+r*dh, q*sw-pw+s*dw]  (0 in the padding)
//   B[pix][n]       = grad_y[img, g*Kg+n, p, q]
//   grad_w[g*Kg+n, c, r, s] = C[(c,r,s)][n]: m is contiguous in grad_w, as
//   pixels are in the forward output, so the same epilogue stores it.
//
// The reduction runs over pixels, which are few GEMM tiles' worth of work
// each but many: the pixel range is cut into `splits` slices of whole k tiles,
// one block per (slice, group, tile). With one slice the block writes grad_w;
// otherwise every slice writes its partial product to its own copy in the
// workspace (zeros for a slice left empty) and a second kernel adds the
// copies in slice order. No atomics: the result is reproducible.
//
// Loads run along pixels, the reduction dimension, because pixels are what
// is contiguous in memory for both operands: thread t loads pixel t % 8 of
// the k tile for rows t/8, t/8 + threads/8, ...; the shared tiles are
// k-major, so these stores transpose (conflict-free with the 4-float row
// padding: 8 k rows x 4 columns per warp hit 32 banks). The per-column
// part of the A gather (channel plane, r*dh, s*dw) is computed once per
// block into a shared table; the per-pixel part once per k tile.
#include <climits>

#include "cuda/conv/conv_common.cuh"
#include "cuda/conv/conv_direct.h"
#include "cuda/norm/reduce.cuh"

namespace pyfastnn {
namespace cuda {

namespace {

using namespace conv_detail;

struct WgradParams {
  const float* x;
  const float* gy;
  float* dst;  // grad_w, or the workspace's first slice copy
  int C, H, W, K, P, Q, R, S, sh, sw, ph, pw, dh, dw, groups;
  int Cg, Kg;
  int M;       // Cg*R*S
  int pixels;  // N*P*Q
  int tiles_m, tiles_n;
  int splits, tiles_per_split, k_tiles_total;
  std::int64_t split_stride;  // elements between the slices' copies (K*Cg*R*S)
  bool vec_store;
};

template <class Cfg>
struct WgradLoader {
  static constexpr int kRowsPerPass = Cfg::kThreads / Cfg::kTileK;
  static constexpr int kAElems = Cfg::kTileM / kRowsPerPass;
  static constexpr int kBElems = Cfg::kTileN / kRowsPerPass;
  static_assert(Cfg::kTileM % kRowsPerPass == 0 && Cfg::kTileN % kRowsPerPass == 0, "whole elements per thread");

  const int4* table;  // per column m of the block: {offset in the image, r*dh, s*dw, m < M}
  const float* x_grp;   // x at image 0, channel g*Cg
  const float* gy_grp;  // grad_y at image 0, channel g*Kg + n0
  int n_left;           // channels from n0 to the group's end
  int pix;              // this thread's pixel in the current k tile
  float a_v[kAElems];
  float b_v[kBElems];

  __device__ __forceinline__ void load(const WgradParams& p) {
    const int row0 = static_cast<int>(threadIdx.x) / Cfg::kTileK;
    const bool pix_ok = pix < p.pixels;
    const int pq_count = p.P * p.Q;
    const int pp = pix_ok ? pix : 0;
    const int img = pp / pq_count;
    const int pq = pp - img * pq_count;
    const int oh = pq / p.Q;
    const int ow = pq - oh * p.Q;
    const int hb = oh * p.sh - p.ph;
    const int wb = ow * p.sw - p.pw;
    const int base = hb * p.W + wb;
    const float* x_img = x_grp + static_cast<std::int64_t>(img) * p.C * (p.H * p.W);
#pragma unroll
    for (int i = 0; i < kAElems; ++i) {
      const int4 e = table[row0 + i * kRowsPerPass];
      const int ih = hb + e.y;
      const int iw = wb + e.z;
      const bool ok = pix_ok && e.w != 0 && static_cast<unsigned>(ih) < static_cast<unsigned>(p.H) &&
                      static_cast<unsigned>(iw) < static_cast<unsigned>(p.W);
      a_v[i] = ok ? x_img[base + e.x] : 0.f;
    }
    const float* gy_pix = gy_grp + static_cast<std::int64_t>(img) * p.K * pq_count + pq;
#pragma unroll
    for (int i = 0; i < kBElems; ++i) {
      const int n = row0 + i * kRowsPerPass;
      b_v[i] = pix_ok && n < n_left ? gy_pix[n * pq_count] : 0.f;
    }
  }

  __device__ __forceinline__ void next(const WgradParams&) { pix += Cfg::kTileK; }

  __device__ __forceinline__ void store(float (*a)[Cfg::kStrideM], float (*b)[Cfg::kStrideN]) const {
    const int k = static_cast<int>(threadIdx.x) % Cfg::kTileK;
    const int row0 = static_cast<int>(threadIdx.x) / Cfg::kTileK;
#pragma unroll
    for (int i = 0; i < kAElems; ++i) a[k][row0 + i * kRowsPerPass] = a_v[i];
#pragma unroll
    for (int i = 0; i < kBElems; ++i) b[k][row0 + i * kRowsPerPass] = b_v[i];
  }
};

// Tiles whose loaders stage 12 or more elements per thread spill at 128
// registers (ptxas, CUDA 13, sm_90): they get up to ~170 and 3/4 of the blocks.
template <class Cfg>
constexpr int wgrad_min_blocks() {
  return WgradLoader<Cfg>::kAElems + WgradLoader<Cfg>::kBElems >= 12 ? Cfg::kMinBlocks * 3 / 4 : Cfg::kMinBlocks;
}

template <class Cfg>
__global__ void __launch_bounds__(Cfg::kThreads, wgrad_min_blocks<Cfg>()) conv_wgrad_gemm_kernel(WgradParams p) {
  __shared__ __align__(16) SharedTiles<Cfg> sm;
  __shared__ int4 table[Cfg::kTileM];

  // Block order: channel tiles fastest, then filter-column tiles, groups, slices.
  int rest = blockIdx.x;
  const int tn = rest % p.tiles_n;
  rest /= p.tiles_n;
  const int tm = rest % p.tiles_m;
  rest /= p.tiles_m;
  const int g = rest % p.groups;
  const int split = rest / p.groups;
  const int m0 = tm * Cfg::kTileM;
  const int n0 = tn * Cfg::kTileN;

  const int taps = p.R * p.S;
  for (int i = threadIdx.x; i < Cfg::kTileM; i += Cfg::kThreads) {
    const int m = m0 + i;
    const bool valid = m < p.M;
    const int c = valid ? m / taps : 0;
    const int tap = valid ? m - c * taps : 0;
    const int r = tap / p.S;
    const int rdh = r * p.dh;
    const int sdw = (tap - r * p.S) * p.dw;
    table[i] = make_int4(c * (p.H * p.W) + rdh * p.W + sdw, rdh, sdw, valid ? 1 : 0);
  }
  __syncthreads();

  const int kt_begin = split * p.tiles_per_split;
  const int kt_end = min(kt_begin + p.tiles_per_split, p.k_tiles_total);

  WgradLoader<Cfg> loader;
  loader.table = table;
  loader.x_grp = p.x + static_cast<std::int64_t>(g) * p.Cg * (static_cast<std::int64_t>(p.H) * p.W);
  loader.gy_grp = p.gy + (static_cast<std::int64_t>(g) * p.Kg + n0) * (static_cast<std::int64_t>(p.P) * p.Q);
  loader.n_left = p.Kg - n0;
  loader.pix = kt_begin * Cfg::kTileK + static_cast<int>(threadIdx.x) % Cfg::kTileK;
  const LaneTile lt = lane_tile<Cfg>();
  float acc[8][Cfg::kTN];
  gemm_mainloop<Cfg>(loader, p, kt_end - kt_begin, sm, lt, acc);

  EpilogueArgs e;
  e.dst = p.dst + split * p.split_stride + static_cast<std::int64_t>(g) * p.Kg * p.M;
  e.bias = nullptr;
  e.m_count = p.M;
  e.n_count = p.Kg;
  e.pix_per_img = p.M;  // one "image": grad_w is a plain (Kg, M) matrix per group
  e.img_stride = 0;
  e.n_stride = p.M;
  e.vec = p.vec_store;
  gemm_epilogue<Cfg>(e, acc, m0, n0, lt);
}

// grad_w[i] = sum of the slices' copies, in slice order.
__global__ void sum_slices_kernel(const float* __restrict__ parts, float* __restrict__ out, std::int64_t total,
                                  int splits) {
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    float v = parts[i];
    for (int j = 1; j < splits; ++j) v += parts[j * total + i];
    out[i] = v;
  }
}

constexpr int kBiasThreads = 256;

__global__ void __launch_bounds__(kBiasThreads) bias_grad_kernel(const float* __restrict__ gy, float* __restrict__ gb,
                                                               int N, int K, int pq_count) {
  __shared__ float scratch[32];
  const int k = blockIdx.x;
  float acc = 0.f;
  if (pq_count >= kBiasThreads) {
    for (int n = 0; n < N; ++n) {
      const float* plane = gy + (static_cast<std::int64_t>(n) * K + k) * pq_count;
      for (int i = threadIdx.x; i < pq_count; i += kBiasThreads) acc += plane[i];
    }
  } else {  // small planes: spread the threads over images too
    const std::int64_t total = static_cast<std::int64_t>(N) * pq_count;
    for (std::int64_t idx = threadIdx.x; idx < total; idx += kBiasThreads) {
      const std::int64_t n = idx / pq_count;
      acc += gy[(n * K + k) * pq_count + (idx - n * pq_count)];
    }
  }
  const float sum = block_sum(acc, scratch);
  if (threadIdx.x == 0) gb[k] = sum;
}

struct WgradPlan {
  int algo = -1;  // kConvGemmTapMajor (the GEMM) or kConvDirect; -1: cannot run
  int tile = 0;
  int splits = 1, tiles_per_split = 0, k_tiles = 0;
  std::int64_t blocks = 0;            // per slice
  std::int64_t workspace_elems = 0;   // slice copies, when splits > 1
};

WgradPlan plan_wgrad(const ConvShape& s, int algo, int tile, int splits) {
  WgradPlan plan;
  if (tile < kTileAuto || tile > kConvTileCount || splits < 0) return plan;
  if (algo == kConvDirect || (algo == kConvAuto && direct_possible(s))) {
    plan.algo = direct_possible(s) ? kConvDirect : -1;
    return plan;
  }
  if (algo != kConvAuto && algo != kConvGemmTapMajor && algo != kConvGemmGeneric) return plan;
  plan.algo = kConvGemmTapMajor;
  const std::int64_t Cg = s.C / s.groups, Kg = s.K / s.groups;
  const std::int64_t M = Cg * s.R * s.S;
  if (tile == kTileAuto) tile = tile_for(M <= 64 ? 64 : 128, tile_n_for(Kg));
  plan.tile = tile;
  const TileDims dims = tile_dims(tile);
  plan.blocks = ceil_div(M, dims.m) * ceil_div(Kg, dims.n) * s.groups;
  const std::int64_t k_tiles = ceil_div(s.N * s.P * s.Q, 8);
  plan.k_tiles = static_cast<int>(k_tiles);
  std::int64_t n_splits = splits;
  if (n_splits == 0) {
    // About four blocks per SM in all, each slice at least 16 k tiles (128 pixels).
    n_splits = std::min(ceil_div(4 * sm_count(), std::max<std::int64_t>(plan.blocks, 1)),
                        std::max<std::int64_t>(k_tiles / 16, 1));
  }
  n_splits = std::max<std::int64_t>(1, std::min(n_splits, std::max<std::int64_t>(k_tiles, 1)));
  // Bounded by the grid and by the slice copies' size.
  const std::int64_t w_elems = s.K * M;
  n_splits = std::min(n_splits, std::max<std::int64_t>(INT_MAX / std::max<std::int64_t>(plan.blocks, 1), 1));
  if (w_elems > 0) n_splits = std::min(n_splits, std::max<std::int64_t>((std::int64_t{1} << 28) / w_elems, 1));
  plan.tiles_per_split = static_cast<int>(ceil_div(k_tiles, n_splits));
  plan.splits = plan.tiles_per_split > 0 ? static_cast<int>(ceil_div(k_tiles, plan.tiles_per_split)) : 1;
  plan.workspace_elems = plan.splits > 1 ? plan.splits * w_elems : 0;
  return plan;
}

template <class Cfg>
cudaError_t launch_wgrad_tile(WgradParams p, std::int64_t blocks_per_split, cudaStream_t stream) {
  p.tiles_m = static_cast<int>(ceil_div(p.M, Cfg::kTileM));
  p.tiles_n = static_cast<int>(ceil_div(p.Kg, Cfg::kTileN));
  const std::int64_t blocks = blocks_per_split * p.splits;
  if (blocks > INT_MAX) return cudaErrorInvalidValue;
  conv_wgrad_gemm_kernel<Cfg><<<static_cast<unsigned>(blocks), Cfg::kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t launch_wgrad(const WgradParams& p, int tile, std::int64_t blocks_per_split, cudaStream_t stream) {
  switch (tile) {
    case kTile128x128: return launch_wgrad_tile<Tile128x128>(p, blocks_per_split, stream);
    case kTile128x64: return launch_wgrad_tile<Tile128x64>(p, blocks_per_split, stream);
    case kTile128x32: return launch_wgrad_tile<Tile128x32>(p, blocks_per_split, stream);
    case kTile64x128: return launch_wgrad_tile<Tile64x128>(p, blocks_per_split, stream);
    case kTile64x64: return launch_wgrad_tile<Tile64x64>(p, blocks_per_split, stream);
    case kTile64x32: return launch_wgrad_tile<Tile64x32>(p, blocks_per_split, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace

std::size_t conv2d_backward_filter_workspace_bytes(const ConvShape& s, int algo, int tile, int splits) {
  if (conv2d_validate(s) != cudaSuccess) return 0;
  const WgradPlan plan = plan_wgrad(s, algo, tile, splits);
  return plan.algo < 0 ? 0 : static_cast<std::size_t>(plan.workspace_elems) * sizeof(float);
}

cudaError_t conv2d_backward_filter_f32(const ConvShape& s, const float* grad_y, const float* x, float* grad_w,
                                       void* workspace, std::size_t workspace_bytes, int algo, int tile,
                                       int splits, cudaStream_t stream) {
  const cudaError_t err = conv2d_validate(s);
  if (err != cudaSuccess) return err;
  const WgradPlan plan = plan_wgrad(s, algo, tile, splits);
  if (plan.algo < 0) return cudaErrorInvalidValue;
  const std::int64_t Cg = s.C / s.groups, Kg = s.K / s.groups;
  const std::int64_t M = Cg * s.R * s.S;
  if (s.K == 0 || M == 0) return cudaSuccess;  // grad_w is empty
  if (grad_w == nullptr) return cudaErrorInvalidValue;
  const bool any_pixels = s.N > 0;  // N == 0: grad_w is zeros, and x, grad_y may be null
  if (any_pixels && (grad_y == nullptr || (x == nullptr && s.H * s.W > 0))) return cudaErrorInvalidValue;
  if (plan.algo == kConvDirect) return depthwise_backward_filter(s, grad_y, x, grad_w, stream);

  if (plan.splits > 1 &&
      (workspace == nullptr || !aligned16(workspace) ||
       workspace_bytes < static_cast<std::size_t>(plan.workspace_elems) * sizeof(float)))
    return cudaErrorInvalidValue;
  WgradParams p{};
  p.x = x;
  p.gy = grad_y;
  p.dst = plan.splits > 1 ? static_cast<float*>(workspace) : grad_w;
  p.C = static_cast<int>(s.C);
  p.H = static_cast<int>(s.H);
  p.W = static_cast<int>(s.W);
  p.K = static_cast<int>(s.K);
  p.P = static_cast<int>(s.P);
  p.Q = static_cast<int>(s.Q);
  p.R = static_cast<int>(s.R);
  p.S = static_cast<int>(s.S);
  p.sh = static_cast<int>(s.SH);
  p.sw = static_cast<int>(s.SW);
  p.ph = static_cast<int>(s.PH);
  p.pw = static_cast<int>(s.PW);
  p.dh = static_cast<int>(s.DH);
  p.dw = static_cast<int>(s.DW);
  p.groups = static_cast<int>(s.groups);
  p.Cg = static_cast<int>(Cg);
  p.Kg = static_cast<int>(Kg);
  p.M = static_cast<int>(M);
  p.pixels = static_cast<int>(s.N * s.P * s.Q);
  p.splits = plan.splits;
  p.tiles_per_split = plan.tiles_per_split;
  p.k_tiles_total = plan.k_tiles;
  p.split_stride = s.K * M;
  p.vec_store = M % 4 == 0 && aligned16(p.dst);
  cudaError_t launch = launch_wgrad(p, plan.tile, plan.blocks, stream);
  if (launch != cudaSuccess || plan.splits == 1) return launch;
  constexpr int kThreads = 256;
  const std::int64_t total = s.K * M;
  const std::int64_t want = ceil_div(total, kThreads);
  sum_slices_kernel<<<static_cast<unsigned>(want < 8192 ? want : 8192), kThreads, 0, stream>>>(
      static_cast<const float*>(workspace), grad_w, total, plan.splits);
  return cudaGetLastError();
}

cudaError_t conv2d_backward_bias_f32(const ConvShape& s, const float* grad_y, float* grad_b, cudaStream_t stream) {
  const cudaError_t err = conv2d_validate(s);
  if (err != cudaSuccess) return err;
  if (s.K == 0) return cudaSuccess;
  if (grad_b == nullptr || (s.N > 0 && grad_y == nullptr)) return cudaErrorInvalidValue;
  bias_grad_kernel<<<static_cast<unsigned>(s.K), kBiasThreads, 0, stream>>>(
      grad_y, grad_b, static_cast<int>(s.N), static_cast<int>(s.K), static_cast<int>(s.P * s.Q));
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace pyfastnn
