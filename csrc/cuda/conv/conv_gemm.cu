// Forward convolution and the gradient of x as implicit GEMMs (no im2col
// buffer: the gather happens on the way into shared memory).
//
// Forward, per group g:  C[m][n] = sum_kk A[m][kk] * B[kk][n]
//   m  = output pixel (image, p, q)        M = N*P*Q
//   n  = output channel within the group   Kg
//   kk = (tap (r, s), input channel c)     R*S*Cg
//   A[m][(r,s,c)] = x[img, g*Cg+c, p*sh-ph+r*dh, q*sw-pw+s*dw]  (0 in the padding)
//   B[(r,s,c)][n] = w[g*Kg+n, c, r, s]
// Gradient of x ("dgrad"), per group: the same GEMM with
//   m  = input pixel (image, h, w)         M = N*H*W
//   n  = input channel within the group    Cg
//   kk = (tap (r, s), output channel k)    R*S*Kg
//   A[m][(r,s,k)] = grad_y[img, g*Kg+k, p, q] where p*sh = h+ph-r*dh and
//                   q*sw = w+pw-s*dw have whole solutions inside the output,
//                   else 0 (strided taps that land between outputs)
//   B[(r,s,k)][n] = w[g*Kg+k, n, r, s]
// so both run one kernel template that differs only in the A gather.
//
// B is first rewritten by a small kernel into a row-major (R*S*kc) x ld matrix
// per group (kc = Cg forward, Kg for dgrad; ld = the produced channels rounded
// up to 4, zero padded) in the caller's workspace: the GEMM then reads it with
// aligned float4 loads along n.
//
// The k tiles (8 deep) come in two orders:
//   tap-major: each k tile is one tap (r, s) and 8 consecutive channels, so a
//     thread checks the padding once per tile for its pixel and its 8/R
//     elements are one pointer apart by a channel plane each (a channel count
//     that is not a multiple of 8 wastes the rest of each tap's last tile);
//   generic: the k tiles run over the flat (tap, channel) index; every element
//     divides its index into (r, s, c). For few channels (C = 1 or 3), where
//     whole 8-channel tiles would be mostly zeros.
// Gather: thread t loads pixel m0 + t % kTileM, the same one in every k tile,
// so its image, row and column are computed once; consecutive threads take
// consecutive pixels, which are consecutive addresses at stride 1.
#include <climits>

#include "cuda/conv/conv_common.cuh"
#include "cuda/conv/conv_direct.h"

namespace pyfastnn {
namespace cuda {

namespace {

using namespace conv_detail;

struct GatherParams {
  const float* src;   // the gathered tensor, NCHW (N, src_c, src_h, src_w): x, or grad_y for dgrad
  const float* wmat;  // groups x (R*S*kc rows of ld floats)
  const float* bias;  // (groups*nc) or null
  float* dst;         // NCHW (N, groups*nc, dst_h, dst_w)
  int src_c, src_h, src_w;
  int dst_h, dst_w;
  int kc, nc, ld;     // channels summed per tap; channels produced per group; wmat row stride
  int R, S, sh, sw, ph, pw, dh, dw;
  int groups;
  int M;              // N * dst_h * dst_w
  int tiles_m, tiles_n, k_tiles;
  bool vec_store;
};

template <class Cfg, bool kGradX, bool kTapMajor>
struct GatherLoader {
  static constexpr int kRowsPerPass = Cfg::kThreads / Cfg::kTileM;  // k rows of A one pass of the block covers
  static constexpr int kAElems = Cfg::kTileK / kRowsPerPass;
  static constexpr int kChunksPerRow = Cfg::kTileN / 4;
  static constexpr int kBChunks = Cfg::kTileK * kChunksPerRow;
  static constexpr int kBVecs = (kBChunks + Cfg::kThreads - 1) / Cfg::kThreads;
  static_assert(Cfg::kTileK % kRowsPerPass == 0, "whole A elements per thread");

  const float* src_img;  // this thread's image at the group's first channel
  const float* wmat;     // this group's weight matrix at the block's first column
  int n_left;            // columns of wmat from the block's first to the group's last
  int anchor_h, anchor_w;
  bool m_ok;
  int c0, r, s;  // tap-major: the current k tile is tap (r, s), channels c0..c0+7
  int kk0;       // generic: the current k tile is flat indices kk0..kk0+7
  float a_v[kAElems];
  float4 b_v[kBVecs];

  __device__ __forceinline__ void init(const GatherParams& p, int g, int m0, int n0) {
    const int m = m0 + static_cast<int>(threadIdx.x) % Cfg::kTileM;
    const int dst_plane = p.dst_h * p.dst_w;
    m_ok = m < p.M;
    const int mm = m_ok ? m : 0;  // keeps src_img inside the tensor
    const int img = mm / dst_plane;
    const int pix = mm - img * dst_plane;
    const int oh = pix / p.dst_w;
    const int ow = pix - oh * p.dst_w;
    if (kGradX) {
      anchor_h = oh + p.ph;
      anchor_w = ow + p.pw;
    } else {
      anchor_h = oh * p.sh - p.ph;
      anchor_w = ow * p.sw - p.pw;
    }
    src_img = p.src + (static_cast<std::int64_t>(img) * p.src_c + static_cast<std::int64_t>(g) * p.kc) *
                          (static_cast<std::int64_t>(p.src_h) * p.src_w);
    wmat = p.wmat + static_cast<std::int64_t>(g) * (p.R * p.S * p.kc) * p.ld + n0;
    n_left = p.nc - n0;
    c0 = r = s = kk0 = 0;
  }

  // Offset within a channel plane of src that tap (tr, ts) reads for this
  // thread's pixel; false where it reads padding, or (dgrad) no output.
  __device__ __forceinline__ bool tap_offset(const GatherParams& p, int tr, int ts, int* off) const {
    if (kGradX) {
      const int hp = anchor_h - tr * p.dh;
      const int wp = anchor_w - ts * p.dw;
      const int oh = hp / p.sh;
      const int ow = wp / p.sw;
      *off = oh * p.src_w + ow;
      return m_ok && hp >= 0 && wp >= 0 && oh * p.sh == hp && ow * p.sw == wp && oh < p.src_h && ow < p.src_w;
    }
    const int ih = anchor_h + tr * p.dh;
    const int iw = anchor_w + ts * p.dw;
    *off = ih * p.src_w + iw;
    return m_ok && static_cast<unsigned>(ih) < static_cast<unsigned>(p.src_h) &&
           static_cast<unsigned>(iw) < static_cast<unsigned>(p.src_w);
  }

  __device__ __forceinline__ void load(const GatherParams& p) {
    const int tid = threadIdx.x;
    const int k_first = tid / Cfg::kTileM;
    const int plane = p.src_h * p.src_w;
    const int k_total = p.R * p.S * p.kc;
    if (kTapMajor) {
      int off;
      const bool ok = tap_offset(p, r, s, &off);
#pragma unroll
      for (int j = 0; j < kAElems; ++j) {
        const int c = c0 + k_first + j * kRowsPerPass;
        a_v[j] = ok && c < p.kc ? src_img[c * plane + off] : 0.f;
      }
    } else {
#pragma unroll
      for (int j = 0; j < kAElems; ++j) {
        const int kk = kk0 + k_first + j * kRowsPerPass;
        float v = 0.f;
        if (kk < k_total) {
          const int tap = kk / p.kc;
          const int c = kk - tap * p.kc;
          const int tr = tap / p.S;
          int off;
          if (tap_offset(p, tr, tap - tr * p.S, &off)) v = src_img[c * plane + off];
        }
        a_v[j] = v;
      }
    }
    const int tap = r * p.S + s;
#pragma unroll
    for (int i = 0; i < kBVecs; ++i) {
      const int idx = tid + i * Cfg::kThreads;
      if (kBChunks % Cfg::kThreads != 0 && idx >= kBChunks) break;
      const int row = idx / kChunksPerRow;
      const int col = (idx % kChunksPerRow) * 4;
      int w_row;
      bool ok;
      if (kTapMajor) {
        ok = c0 + row < p.kc;
        w_row = tap * p.kc + c0 + row;
      } else {
        w_row = kk0 + row;
        ok = w_row < k_total;
      }
      // ld is a multiple of 4 and the padding is zeros: a chunk that starts
      // inside the group's columns lies wholly inside the row.
      b_v[i] = ok && col < n_left ? *reinterpret_cast<const float4*>(wmat + w_row * p.ld + col)
                                  : make_float4(0.f, 0.f, 0.f, 0.f);
    }
  }

  __device__ __forceinline__ void next(const GatherParams& p) {
    if (kTapMajor) {
      c0 += Cfg::kTileK;
      if (c0 >= p.kc) {
        c0 = 0;
        if (++s == p.S) {
          s = 0;
          ++r;
        }
      }
    } else {
      kk0 += Cfg::kTileK;
    }
  }

  __device__ __forceinline__ void store(float (*a)[Cfg::kStrideM], float (*b)[Cfg::kStrideN]) const {
    const int tid = threadIdx.x;
    const int m_local = tid % Cfg::kTileM;
    const int k_first = tid / Cfg::kTileM;
#pragma unroll
    for (int j = 0; j < kAElems; ++j) a[k_first + j * kRowsPerPass][m_local] = a_v[j];
#pragma unroll
    for (int i = 0; i < kBVecs; ++i) {
      const int idx = tid + i * Cfg::kThreads;
      if (kBChunks % Cfg::kThreads != 0 && idx >= kBChunks) break;
      *reinterpret_cast<float4*>(&b[idx / kChunksPerRow][(idx % kChunksPerRow) * 4]) = b_v[i];
    }
  }
};

template <class Cfg, bool kGradX, bool kTapMajor>
__global__ void __launch_bounds__(Cfg::kThreads, Cfg::kMinBlocks) conv_gather_gemm_kernel(GatherParams p) {
  __shared__ __align__(16) SharedTiles<Cfg> sm;
  // Consecutive blocks share their pixels (A) and differ in channels.
  const int tiles = p.tiles_m * p.tiles_n;
  const int g = blockIdx.x / tiles;
  const int t = blockIdx.x - g * tiles;
  const int m0 = (t / p.tiles_n) * Cfg::kTileM;
  const int n0 = (t % p.tiles_n) * Cfg::kTileN;

  GatherLoader<Cfg, kGradX, kTapMajor> loader;
  loader.init(p, g, m0, n0);
  const LaneTile lt = lane_tile<Cfg>();
  float acc[8][Cfg::kTN];
  gemm_mainloop<Cfg>(loader, p, p.k_tiles, sm, lt, acc);

  const std::int64_t dst_plane = static_cast<std::int64_t>(p.dst_h) * p.dst_w;
  EpilogueArgs e;
  e.dst = p.dst + static_cast<std::int64_t>(g) * p.nc * dst_plane;
  e.bias = p.bias != nullptr ? p.bias + g * p.nc : nullptr;
  e.m_count = p.M;
  e.n_count = p.nc;
  e.pix_per_img = static_cast<int>(dst_plane);
  e.img_stride = static_cast<std::int64_t>(p.groups) * p.nc * dst_plane;
  e.n_stride = dst_plane;
  e.vec = p.vec_store;
  gemm_epilogue<Cfg>(e, acc, m0, n0, lt);
}

// wmat[g][tap][j][col] = w[g*Kg + k, c, tap] with (j, col) = (c, k) forward
// and (k, c) for dgrad; the columns past the group's channels are zeros.
__global__ void weight_matrix_kernel(const float* __restrict__ w, float* __restrict__ wmat, std::int64_t total,
                                     int Kg, int Cg, int taps, int ld, bool grad_x) {
  const int kc = grad_x ? Kg : Cg;
  const int cols = grad_x ? Cg : Kg;
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const int col = static_cast<int>(i % ld);
    const std::int64_t row = i / ld;  // (g, tap, j)
    const int j = static_cast<int>(row % kc);
    const std::int64_t g_tap = row / kc;
    const int tap = static_cast<int>(g_tap % taps);
    const std::int64_t g = g_tap / taps;
    float v = 0.f;
    if (col < cols) {
      const int k = grad_x ? j : col;
      const int c = grad_x ? col : j;
      v = w[((g * Kg + k) * Cg + c) * taps + tap];
    }
    wmat[i] = v;
  }
}

template <class Cfg, bool kGradX>
cudaError_t launch_tile(GatherParams p, bool tap_major, cudaStream_t stream) {
  p.tiles_m = static_cast<int>(ceil_div(p.M, Cfg::kTileM));
  p.tiles_n = static_cast<int>(ceil_div(p.nc, Cfg::kTileN));
  const std::int64_t blocks = static_cast<std::int64_t>(p.tiles_m) * p.tiles_n * p.groups;
  if (blocks == 0) return cudaSuccess;
  if (blocks > INT_MAX) return cudaErrorInvalidValue;
  const std::int64_t taps = static_cast<std::int64_t>(p.R) * p.S;
  p.k_tiles = static_cast<int>(tap_major ? taps * ceil_div(p.kc, Cfg::kTileK) : ceil_div(taps * p.kc, Cfg::kTileK));
  if (tap_major)
    conv_gather_gemm_kernel<Cfg, kGradX, true><<<static_cast<unsigned>(blocks), Cfg::kThreads, 0, stream>>>(p);
  else
    conv_gather_gemm_kernel<Cfg, kGradX, false><<<static_cast<unsigned>(blocks), Cfg::kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

template <bool kGradX>
cudaError_t launch_gather_gemm(const GatherParams& p, int tile, bool tap_major, cudaStream_t stream) {
  switch (tile) {
    case kTile128x128: return launch_tile<Tile128x128, kGradX>(p, tap_major, stream);
    case kTile128x64: return launch_tile<Tile128x64, kGradX>(p, tap_major, stream);
    case kTile128x32: return launch_tile<Tile128x32, kGradX>(p, tap_major, stream);
    case kTile64x128: return launch_tile<Tile64x128, kGradX>(p, tap_major, stream);
    case kTile64x64: return launch_tile<Tile64x64, kGradX>(p, tap_major, stream);
    case kTile64x32: return launch_tile<Tile64x32, kGradX>(p, tap_major, stream);
    default: return cudaErrorInvalidValue;
  }
}

// The algorithm a request resolves to; -1 when it cannot run this problem.
int resolve_algo(const ConvShape& s, int algo, bool grad_x) {
  if (algo == kConvAuto) {
    if (direct_possible(s)) return kConvDirect;
    return pick_gather(grad_x ? s.K / s.groups : s.C / s.groups);
  }
  if (algo == kConvDirect) return direct_possible(s) ? kConvDirect : -1;
  if (algo == kConvGemmTapMajor || algo == kConvGemmGeneric) return algo;
  return -1;
}

// Runs the weight rewrite and the GEMM of the forward pass (grad_x false) or
// of dgrad (true); src is x or grad_y, dst y or grad_x.
cudaError_t run_gather_gemm(const ConvShape& s, bool grad_x, const float* src, const float* w, const float* bias,
                            float* dst, void* workspace, std::size_t workspace_bytes, int algo, int tile,
                            cudaStream_t stream) {
  const std::int64_t Cg = s.C / s.groups, Kg = s.K / s.groups, taps = s.R * s.S;
  const std::int64_t elems = weight_matrix_elems(s, grad_x);
  if (workspace_bytes < static_cast<std::size_t>(elems) * sizeof(float) || !aligned16(workspace) ||
      (elems > 0 && workspace == nullptr))
    return cudaErrorInvalidValue;
  float* wmat = static_cast<float*>(workspace);
  const int ld = static_cast<int>(round_up4(grad_x ? Cg : Kg));
  if (elems > 0) {
    constexpr int kThreads = 256;
    const std::int64_t want = ceil_div(elems, kThreads);
    weight_matrix_kernel<<<static_cast<unsigned>(want < 4096 ? want : 4096), kThreads, 0, stream>>>(
        w, wmat, elems, static_cast<int>(Kg), static_cast<int>(Cg), static_cast<int>(taps), ld, grad_x);
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return err;
  }

  GatherParams p{};
  p.src = src;
  p.wmat = wmat;
  p.bias = bias;
  p.dst = dst;
  p.src_c = static_cast<int>(grad_x ? s.K : s.C);
  p.src_h = static_cast<int>(grad_x ? s.P : s.H);
  p.src_w = static_cast<int>(grad_x ? s.Q : s.W);
  p.dst_h = static_cast<int>(grad_x ? s.H : s.P);
  p.dst_w = static_cast<int>(grad_x ? s.W : s.Q);
  p.kc = static_cast<int>(grad_x ? Kg : Cg);
  p.nc = static_cast<int>(grad_x ? Cg : Kg);
  p.ld = ld;
  p.R = static_cast<int>(s.R);
  p.S = static_cast<int>(s.S);
  p.sh = static_cast<int>(s.SH);
  p.sw = static_cast<int>(s.SW);
  p.ph = static_cast<int>(s.PH);
  p.pw = static_cast<int>(s.PW);
  p.dh = static_cast<int>(s.DH);
  p.dw = static_cast<int>(s.DW);
  p.groups = static_cast<int>(s.groups);
  const std::int64_t dst_plane = static_cast<std::int64_t>(p.dst_h) * p.dst_w;
  p.M = static_cast<int>(s.N * dst_plane);
  p.vec_store = dst_plane % 4 == 0 && aligned16(dst);
  if (tile == kTileAuto) tile = pick_pixel_tile(p.M, p.nc, p.groups);
  const bool tap_major = algo == kConvGemmTapMajor;
  return grad_x ? launch_gather_gemm<true>(p, tile, tap_major, stream)
                : launch_gather_gemm<false>(p, tile, tap_major, stream);
}

bool fits(std::initializer_list<std::int64_t> dims) {
  std::int64_t n = 1;
  for (std::int64_t d : dims) {
    if (d < 0) return false;
    if (d != 0 && n > kConvMaxElems / d) return false;
    n *= d;
  }
  return true;
}

}  // namespace

cudaError_t conv2d_validate(const ConvShape& s) {
  if (s.N < 0 || s.C < 0 || s.H < 0 || s.W < 0 || s.K < 0 || s.R < 1 || s.S < 1) return cudaErrorInvalidValue;
  if (s.SH < 1 || s.SW < 1 || s.DH < 1 || s.DW < 1 || s.PH < 0 || s.PW < 0 || s.groups < 1)
    return cudaErrorInvalidValue;
  if (s.C % s.groups != 0 || s.K % s.groups != 0) return cudaErrorInvalidValue;
  // Every single size below 2^31 first, so that the sums and products that
  // follow cannot overflow int64.
  for (std::int64_t v : {s.N, s.C, s.H, s.W, s.K, s.R, s.S, s.SH, s.SW, s.PH, s.PW, s.DH, s.DW, s.groups, s.P, s.Q})
    if (v > kConvMaxElems) return cudaErrorInvalidValue;
  const std::int64_t hp = s.H + 2 * s.PH, wp = s.W + 2 * s.PW;
  const std::int64_t ekh = s.DH * (s.R - 1) + 1, ekw = s.DW * (s.S - 1) + 1;
  if (ekh > hp || ekw > wp) return cudaErrorInvalidValue;
  if (s.P != (hp - ekh) / s.SH + 1 || s.Q != (wp - ekw) / s.SW + 1) return cudaErrorInvalidValue;
  // The kernels index with 32-bit ints within one padded image, within the
  // output of one image, along the GEMMs' M (pixels) and within the weights.
  const std::int64_t cg = s.C / s.groups, kg = s.K / s.groups;
  if (!fits({std::max<std::int64_t>(s.C, 1), hp, wp}) || !fits({s.K, s.P, s.Q}) || !fits({s.N, s.H, s.W}) ||
      !fits({s.N, s.P, s.Q}) || !fits({s.K, cg, s.R, s.S}) || !fits({s.groups, s.R, s.S, cg, round_up4(kg)}) ||
      !fits({s.groups, s.R, s.S, kg, round_up4(cg)}))
    return cudaErrorInvalidValue;
  return cudaSuccess;
}

std::size_t conv2d_forward_workspace_bytes(const ConvShape& s, int algo) {
  if (conv2d_validate(s) != cudaSuccess) return 0;
  const int a = resolve_algo(s, algo, false);
  if (a != kConvGemmTapMajor && a != kConvGemmGeneric) return 0;
  return static_cast<std::size_t>(weight_matrix_elems(s, false)) * sizeof(float);
}

std::size_t conv2d_backward_data_workspace_bytes(const ConvShape& s, int algo) {
  if (conv2d_validate(s) != cudaSuccess) return 0;
  const int a = resolve_algo(s, algo, true);
  if (a != kConvGemmTapMajor && a != kConvGemmGeneric) return 0;
  return static_cast<std::size_t>(weight_matrix_elems(s, true)) * sizeof(float);
}

cudaError_t conv2d_forward_f32(const ConvShape& s, const float* x, const float* w, const float* bias, float* y,
                               void* workspace, std::size_t workspace_bytes, int algo, int tile,
                               cudaStream_t stream) {
  const cudaError_t err = conv2d_validate(s);
  if (err != cudaSuccess) return err;
  if (tile < kTileAuto || tile > kConvTileCount) return cudaErrorInvalidValue;
  const int a = resolve_algo(s, algo, false);
  if (a < 0) return cudaErrorInvalidValue;
  if (s.N == 0 || s.K == 0) return cudaSuccess;  // y is empty
  // An empty x (C == 0 or an empty plane inside padding) or w may come as null.
  if (y == nullptr || (x == nullptr && s.C * s.H * s.W > 0) || (w == nullptr && s.C > 0))
    return cudaErrorInvalidValue;
  if (a == kConvDirect) return depthwise_forward(s, x, w, bias, y, stream);
  return run_gather_gemm(s, false, x, w, bias, y, workspace, workspace_bytes, a, tile, stream);
}

cudaError_t conv2d_backward_data_f32(const ConvShape& s, const float* grad_y, const float* w, float* grad_x,
                                     void* workspace, std::size_t workspace_bytes, int algo, int tile,
                                     cudaStream_t stream) {
  const cudaError_t err = conv2d_validate(s);
  if (err != cudaSuccess) return err;
  if (tile < kTileAuto || tile > kConvTileCount) return cudaErrorInvalidValue;
  const int a = resolve_algo(s, algo, true);
  if (a < 0) return cudaErrorInvalidValue;
  if (s.N == 0 || s.C == 0 || s.H == 0 || s.W == 0) return cudaSuccess;  // grad_x is empty
  // K == 0: no output channel reaches x; the GEMM has no k tiles and writes zeros.
  if (grad_x == nullptr || (s.K > 0 && (grad_y == nullptr || w == nullptr))) return cudaErrorInvalidValue;
  if (a == kConvDirect) return depthwise_backward_data(s, grad_y, w, grad_x, stream);
  return run_gather_gemm(s, true, grad_y, w, nullptr, grad_x, workspace, workspace_bytes, a, tile, stream);
}

}  // namespace cuda
}  // namespace pyfastnn
