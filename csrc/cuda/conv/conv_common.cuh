// Pieces shared by the convolution kernels: host-side choices (tile shape,
// gather order, workspace sizes), the register-blocked GEMM core
// (tile shapes, the double-buffered main loop, the NCHW epilogue) that the
// forward, grad-x and grad-w kernels run with their own operand loaders.
//
// The GEMM core, as in the SGEMM (gemm/sgemm.cu): a block computes a
// kTileM x kTileN tile of C = A . B, walking k in steps of kTileK = 8 through
// two shared-memory buffers; while it multiplies one, each thread holds the
// global loads of the next in registers and stores them after the multiply,
// so one barrier per k tile suffices. Shared tiles are k-major (a[k][m],
// b[k][n]) so that the inner loop reads float4s.
//
// Warp tiling: a warp owns 64 (m) x 4*kTN (n); lane l holds rows
// (l%8)*4 + {0..3, 32..35} and columns (l/8)*4 + {0..3} (+ {16..19} when
// kTN = 8): an 8 x kTN register tile. m is the pixel (or filter-column)
// dimension, which is contiguous in the NCHW outputs, so a lane's four
// consecutive rows are one float4 store and eight lanes cover 128 contiguous
// bytes.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>

#include "cuda/conv/conv.h"

namespace pyfastnn {
namespace cuda {
namespace conv_detail {

// ------------------------------------------------------------ tile shapes
template <int kWarpsM_, int kWarpsN_, int kTN_>
struct TileConfig {
  static constexpr int kWarpsM = kWarpsM_;
  static constexpr int kWarpsN = kWarpsN_;
  static constexpr int kTM = 8;
  static constexpr int kTN = kTN_;
  static constexpr int kTileM = 64 * kWarpsM;
  static constexpr int kTileN = 4 * kTN * kWarpsN;
  static constexpr int kTileK = 8;
  static constexpr int kThreads = 32 * kWarpsM * kWarpsN;
  // Blocks per SM the register budget is cut for: 128 registers per thread.
  static constexpr int kMinBlocks = 65536 / 128 / kThreads;
  // 4 floats of padding per k row keep float4 alignment and make the
  // transposing stores of the grad-w loaders (8 k rows x 4 columns per warp)
  // conflict-free.
  static constexpr int kStrideM = kTileM + 4;
  static constexpr int kStrideN = kTileN + 4;
  static_assert(kTN == 4 || kTN == 8, "a lane holds one or two float4 column groups");
  static_assert(kThreads % kTileM == 0, "every thread gathers for one pixel: a fixed row of A");
  static_assert(kThreads % kTileK == 0, "grad-w loaders: whole rows of threads per k row");
};

using Tile128x128 = TileConfig<2, 4, 8>;  // 256 threads
using Tile128x64 = TileConfig<2, 2, 8>;   // 128 threads
using Tile128x32 = TileConfig<2, 2, 4>;   // 128 threads
using Tile64x128 = TileConfig<1, 4, 8>;   // 128 threads
using Tile64x64 = TileConfig<1, 2, 8>;    // 64 threads
using Tile64x32 = TileConfig<1, 2, 4>;    // 64 threads

template <class Cfg>
struct SharedTiles {
  float a[2][Cfg::kTileK][Cfg::kStrideM];
  float b[2][Cfg::kTileK][Cfg::kStrideN];
};

// This thread's place in the block's register tiling.
struct LaneTile {
  int row_base;  // first of rows row_base + {0..3, 32..35}
  int col_base;  // first of columns col_base + {0..3} (+ {16..19})
};

template <class Cfg>
__device__ __forceinline__ LaneTile lane_tile() {
  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  LaneTile t;
  t.row_base = (warp % Cfg::kWarpsM) * 64 + (lane & 7) * 4;
  t.col_base = (warp / Cfg::kWarpsM) * (4 * Cfg::kTN) + (lane >> 3) * 4;
  return t;
}

// Row i (0..7) and column j (0..kTN-1) of the lane's register tile, relative
// to the block tile.
__device__ __forceinline__ int tile_row(const LaneTile& t, int i) { return t.row_base + (i >> 2) * 32 + (i & 3); }
__device__ __forceinline__ int tile_col(const LaneTile& t, int j) { return t.col_base + (j >> 2) * 16 + (j & 3); }

// The main loop over k tiles [0, k_tiles). The loader's interface (p: the
// kernel's parameter block, passed down by reference so its fields stay in
// the constant bank instead of registers):
//   load(p)   global -> registers, for its current k tile
//   next(p)   moves to the following k tile
//   store(a, b)  registers -> the shared tiles a[k][m], b[k][n]
template <class Cfg, class Loader, class Params>
__device__ __forceinline__ void gemm_mainloop(Loader& loader, const Params& p, int k_tiles, SharedTiles<Cfg>& sm,
                                              const LaneTile& lt, float (&acc)[8][Cfg::kTN]) {
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < Cfg::kTN; ++j) acc[i][j] = 0.f;
  if (k_tiles <= 0) return;

  loader.load(p);
  loader.store(sm.a[0], sm.b[0]);
  __syncthreads();
  for (int kt = 0; kt < k_tiles; ++kt) {
    const int cur = kt & 1;
    const bool more = kt + 1 < k_tiles;
    if (more) {  // in flight during the multiply below
      loader.next(p);
      loader.load(p);
    }
#pragma unroll 2
    for (int kk = 0; kk < Cfg::kTileK; ++kk) {
      const float4 a_lo = *reinterpret_cast<const float4*>(&sm.a[cur][kk][lt.row_base]);
      const float4 a_hi = *reinterpret_cast<const float4*>(&sm.a[cur][kk][lt.row_base + 32]);
      const float av[8] = {a_lo.x, a_lo.y, a_lo.z, a_lo.w, a_hi.x, a_hi.y, a_hi.z, a_hi.w};
      float bv[Cfg::kTN];
      const float4 b_lo = *reinterpret_cast<const float4*>(&sm.b[cur][kk][lt.col_base]);
      bv[0] = b_lo.x;
      bv[1] = b_lo.y;
      bv[2] = b_lo.z;
      bv[3] = b_lo.w;
      if constexpr (Cfg::kTN == 8) {
        const float4 b_hi = *reinterpret_cast<const float4*>(&sm.b[cur][kk][lt.col_base + 16]);
        bv[4] = b_hi.x;
        bv[5] = b_hi.y;
        bv[6] = b_hi.z;
        bv[7] = b_hi.w;
      }
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < Cfg::kTN; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    if (more) loader.store(sm.a[cur ^ 1], sm.b[cur ^ 1]);  // buffer cur^1 was last read before the previous barrier
    __syncthreads();
  }
}

// Where C goes. Element (m, n) of the block's GEMM lands at
//   dst[(m / pix_per_img) * img_stride + m % pix_per_img + n * n_stride]
// (NCHW: m runs over the pixels of the images, n over the channels of a
// group; a plain column-major matrix when pix_per_img >= m_count), plus
// bias[n] when bias is set. dst and bias point at the group's first channel.
struct EpilogueArgs {
  float* dst;
  const float* bias;
  int m_count, n_count;
  int pix_per_img;
  std::int64_t img_stride, n_stride;
  // m_count, pix_per_img, img_stride and n_stride are multiples of 4 and dst
  // is 16-byte aligned: four consecutive rows starting at a multiple of 4 are
  // one aligned float4.
  bool vec;
};

template <class Cfg>
__device__ __forceinline__ void gemm_epilogue(const EpilogueArgs& e, const float (&acc)[8][Cfg::kTN], int m0, int n0,
                                              const LaneTile& lt) {
  float bias_v[Cfg::kTN];
#pragma unroll
  for (int j = 0; j < Cfg::kTN; ++j) {
    const int n = n0 + tile_col(lt, j);
    bias_v[j] = e.bias != nullptr && n < e.n_count ? e.bias[n] : 0.f;
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int m = m0 + lt.row_base + h * 32;
    if (m >= e.m_count) continue;
    if (e.vec) {  // m is a multiple of 4 and m_count too: all four rows exist
      const int img = m / e.pix_per_img;
      float* base = e.dst + img * e.img_stride + (m - img * e.pix_per_img);
#pragma unroll
      for (int j = 0; j < Cfg::kTN; ++j) {
        const int n = n0 + tile_col(lt, j);
        if (n < e.n_count)
          *reinterpret_cast<float4*>(base + n * e.n_stride) =
              make_float4(acc[h * 4 + 0][j] + bias_v[j], acc[h * 4 + 1][j] + bias_v[j],
                          acc[h * 4 + 2][j] + bias_v[j], acc[h * 4 + 3][j] + bias_v[j]);
      }
    } else {
#pragma unroll
      for (int t = 0; t < 4; ++t) {
        const int mt = m + t;
        if (mt >= e.m_count) break;
        const int img = mt / e.pix_per_img;
        float* base = e.dst + img * e.img_stride + (mt - img * e.pix_per_img);
#pragma unroll
        for (int j = 0; j < Cfg::kTN; ++j) {
          const int n = n0 + tile_col(lt, j);
          if (n < e.n_count) base[n * e.n_stride] = acc[h * 4 + t][j] + bias_v[j];
        }
      }
    }
  }
}

// ------------------------------------------------------------- host side
inline std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }
inline std::int64_t round_up4(std::int64_t a) { return (a + 3) / 4 * 4; }
inline bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

inline int sm_count() {
  int dev = 0, sms = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) !=
                                                 cudaSuccess) {
    cudaGetLastError();  // a query failing must not poison the next launch check
    return 108;
  }
  return sms > 0 ? sms : 108;
}

struct TileDims {
  int m, n;
};

inline TileDims tile_dims(int tile) {
  switch (tile) {
    case kTile128x128: return {128, 128};
    case kTile128x64: return {128, 64};
    case kTile128x32: return {128, 32};
    case kTile64x128: return {64, 128};
    case kTile64x64: return {64, 64};
    default: return {64, 32};
  }
}

inline int tile_for(int tile_m, int tile_n) {
  if (tile_m == 128) return tile_n == 128 ? kTile128x128 : tile_n == 64 ? kTile128x64 : kTile128x32;
  return tile_n == 128 ? kTile64x128 : tile_n == 64 ? kTile64x64 : kTile64x32;
}

inline int tile_n_for(std::int64_t channels) { return channels <= 32 ? 32 : channels <= 64 ? 64 : 128; }

// The forward and grad-x tile: as many channels as the group produces (up to
// 128) and 128 pixels, unless that leaves fewer than 8 warps per SM in all
// (two per scheduler): then 64 pixels, and if that is still too few, the
// 64x32 tile, whose 8x4 per-thread tiles give twice the warps for the same
// problem (every 8x8 tile shape gives M*N/2048 warps).
inline int pick_pixel_tile(std::int64_t m, std::int64_t channels, std::int64_t groups) {
  const int tn = tile_n_for(channels);
  const std::int64_t want_warps = 8 * static_cast<std::int64_t>(sm_count());
  const int per_thread = tn == 32 ? 32 : 64;  // outputs: 8x4 (32-channel tiles) or 8x8
  for (int tm : {128, 64}) {
    const std::int64_t blocks = ceil_div(m, tm) * ceil_div(channels, tn) * groups;
    if (blocks * (tm * tn / per_thread / 32) >= want_warps) return tile_for(tm, tn);
  }
  return kTile64x32;
}

// The C/groups == 1 (depthwise) direct kernels.
inline bool direct_possible(const ConvShape& s) { return s.C == s.groups && s.groups > 1; }

// kc: channels summed per tap (C/groups forward, K/groups for grad x). Whole
// 8-channel k tiles per tap waste the rest of the last tile; past 32
// channels that is at most 7/32 of the work and saves the per-element
// (tap, channel) divisions of the generic gather.
inline int pick_gather(std::int64_t kc) { return kc % 8 == 0 || kc >= 32 ? kConvGemmTapMajor : kConvGemmGeneric; }

// Rows (taps x kc) times the padded row length of the weight matrix the
// forward / grad-x GEMM reads (one per group).
inline std::int64_t weight_matrix_elems(const ConvShape& s, bool grad_x) {
  const std::int64_t cg = s.C / s.groups, kg = s.K / s.groups;
  return s.groups * s.R * s.S * (grad_x ? kg * round_up4(cg) : cg * round_up4(kg));
}

}  // namespace conv_detail
}  // namespace cuda
}  // namespace pyfastnn
