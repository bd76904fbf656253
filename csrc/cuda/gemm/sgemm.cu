// float32 SGEMM on the CUDA cores.
//
// Block: 256 threads compute a 128x128 tile of C, walking k in steps of
// kTileK. Shared memory holds two k-tiles of A and B (double buffering): while
// the block multiplies one, each thread has already issued the global loads of
// the next into registers, and stores them after the multiply, so one
// __syncthreads per k-tile suffices.
//
// Two configurations (SgemmConfig), both without spills under ptxas of CUDA
// 13.0 for sm_80 and sm_90:
//   kTileK 16, one block per SM, k loop unrolled: 160-190 registers; the
//     compiler schedules the shared-memory reads of later k steps early. 33 KB smem.
//   kTileK 8, two blocks per SM (<= 128 registers), k loop rolled: the other
//     block's warps hide shared-memory latency and barrier waits. 17 KB smem.
//     (Unrolling this one, or kTileK 16 at two blocks, spills.)
// Which is faster is for the GPU to say: GemmArgs::variant picks one.
//
// Warp tiling: the 8 warps form a 4 (m) x 2 (n) grid of 32x64 warp tiles; a
// lane owns an 8x8 register tile made of two row groups (r..r+3, r+16..r+19)
// times two column groups (c..c+3, c+32..c+35). Per k step a lane reads two
// float4 of A and two of B from shared memory and issues 64 FFMAs; within a
// warp the B reads are 128 contiguous bytes and the A reads broadcast.
//
// Shared tiles are k-major (s[k][m] and s[k][n]), so those reads are float4.
// Operands whose k runs along memory rows (A untransposed, B transposed) are
// transposed on the way in; the others are copied as they are.
//
// Global loads are float4 where the operand's base, row stride and batch
// stride are multiples of 16 bytes and the four floats lie inside the matrix;
// anywhere else (edge tiles, odd strides) the same four elements are loaded
// one by one with bounds checks and zero fill, so no tile is special-cased.
#include <climits>

#include "cuda/gemm/gemm_common.cuh"
#include "cuda/gemm/sgemm.h"

namespace pyfastnn {
namespace cuda {

namespace {

constexpr int kTileM = 128;
constexpr int kTileN = 128;
constexpr int kThreads = 256;
// 4 floats of padding per k row: keeps float4 alignment and halves the bank
// conflicts of the transposing stores (4-way -> 2-way).
constexpr int kSmemStride = kTileM + 4;

static_assert(kTileM == kTileN, "one loader shape serves A and B");

template <int kTileK_, int kMinBlocks_, int kUnroll_>
struct SgemmConfig {
  static constexpr int kTileK = kTileK_;
  static constexpr int kMinBlocks = kMinBlocks_;  // blocks per SM the register budget is cut for
  static constexpr int kUnroll = kUnroll_;        // unroll factor of the k loop inside a tile
  static_assert(kTileM * kTileK % (4 * kThreads) == 0, "whole float4 per thread");
};
using OneBlockK16 = SgemmConfig<16, 1, 16>;
using TwoBlocksK8 = SgemmConfig<8, 2, 1>;

// One operand's k-tile on its way from global to shared memory.
// kKContiguous: the tile is 128 lines (rows of A, or of B^T) of kTileK floats
// contiguous in memory; otherwise kTileK lines (k) of 128 contiguous floats.
template <bool kKContiguous, int kTileK>
struct TileLoader {
  static constexpr int kVecs = kTileM * kTileK / 4 / kThreads;
  static constexpr int kVecsPerLine = kKContiguous ? kTileK / 4 : kTileM / 4;
  float4 v[kVecs];

  // base: the tile's first element; rows_left: rows (m or n) from the tile's
  // first to the matrix end; k_left: the same along k.
  __device__ __forceinline__ void load(const float* base, std::int64_t ld, int rows_left, int k_left, bool vec_ok,
                                       int tid) {
    const int lines_left = kKContiguous ? rows_left : k_left;
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      const int idx = tid + i * kThreads;
      const int line = idx / kVecsPerLine;
      const int off = (idx % kVecsPerLine) * 4;
      const int along_left = (kKContiguous ? k_left : rows_left) - off;
      const float* src = base + line * ld + off;
      const bool line_in = line < lines_left;
      if (vec_ok && line_in && along_left >= 4) {
        v[i] = *reinterpret_cast<const float4*>(src);
      } else {
        v[i].x = line_in && along_left > 0 ? src[0] : 0.f;
        v[i].y = line_in && along_left > 1 ? src[1] : 0.f;
        v[i].z = line_in && along_left > 2 ? src[2] : 0.f;
        v[i].w = line_in && along_left > 3 ? src[3] : 0.f;
      }
    }
  }

  __device__ __forceinline__ void store(float (*s)[kSmemStride], int tid) const {
#pragma unroll
    for (int i = 0; i < kVecs; ++i) {
      const int idx = tid + i * kThreads;
      const int line = idx / kVecsPerLine;
      const int off = (idx % kVecsPerLine) * 4;
      if (kKContiguous) {
        s[off + 0][line] = v[i].x;
        s[off + 1][line] = v[i].y;
        s[off + 2][line] = v[i].z;
        s[off + 3][line] = v[i].w;
      } else {
        *reinterpret_cast<float4*>(&s[line][off]) = v[i];
      }
    }
  }
};

template <bool kTransA, bool kTransB, class Config>
__global__ void __launch_bounds__(kThreads, Config::kMinBlocks)
    sgemm_128x128_kernel(GemmArgs p, bool vec_a, bool vec_b, bool vec_c) {
  constexpr int kTileK = Config::kTileK;
  __shared__ __align__(16) float smem_a[2][kTileK][kSmemStride];
  __shared__ __align__(16) float smem_b[2][kTileK][kSmemStride];

  const int M = static_cast<int>(p.m);
  const int N = static_cast<int>(p.n);
  const int K = static_cast<int>(p.k);
  int tile_m, tile_n;
  gemm_detail::grouped_tile(blockIdx.x, (M + kTileM - 1) / kTileM, (N + kTileN - 1) / kTileN, &tile_m, &tile_n);
  const int m0 = tile_m * kTileM;
  const int n0 = tile_n * kTileN;

  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;
  const int row_base = (warp >> 1) * 32 + (lane >> 3) * 4;  // within the tile; + 0..3 and + 16..19
  const int col_base = (warp & 1) * 64 + (lane & 7) * 4;    // + 0..3 and + 32..35
  const int k_tiles = (K + kTileK - 1) / kTileK;
  const std::int64_t a_step = kTransA ? kTileK * p.lda : kTileK;
  const std::int64_t b_step = kTransB ? kTileK : kTileK * p.ldb;

  const std::int64_t batch = gemm_detail::block_batch();
  if (batch >= p.batch) return;

  const float* a = static_cast<const float*>(p.a) + batch * p.batch_stride_a + (kTransA ? m0 : m0 * p.lda);
  const float* b = static_cast<const float*>(p.b) + batch * p.batch_stride_b + (kTransB ? n0 * p.ldb : n0);

  float acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.f;

  TileLoader<!kTransA, kTileK> load_a;
  TileLoader<kTransB, kTileK> load_b;
  if (k_tiles > 0) {
    load_a.load(a, p.lda, M - m0, K, vec_a, tid);
    load_b.load(b, p.ldb, N - n0, K, vec_b, tid);
    load_a.store(smem_a[0], tid);
    load_b.store(smem_b[0], tid);
    __syncthreads();

    for (int kt = 0; kt < k_tiles; ++kt) {
      const int cur = kt & 1;
      const bool more = kt + 1 < k_tiles;
      if (more) {  // in flight during the multiply below
        a += a_step;
        b += b_step;
        const int k_left = K - (kt + 1) * kTileK;
        load_a.load(a, p.lda, M - m0, k_left, vec_a, tid);
        load_b.load(b, p.ldb, N - n0, k_left, vec_b, tid);
      }
#pragma unroll Config::kUnroll
      for (int kk = 0; kk < kTileK; ++kk) {
        const float4 a_lo = *reinterpret_cast<const float4*>(&smem_a[cur][kk][row_base]);
        const float4 a_hi = *reinterpret_cast<const float4*>(&smem_a[cur][kk][row_base + 16]);
        const float4 b_lo = *reinterpret_cast<const float4*>(&smem_b[cur][kk][col_base]);
        const float4 b_hi = *reinterpret_cast<const float4*>(&smem_b[cur][kk][col_base + 32]);
        const float av[8] = {a_lo.x, a_lo.y, a_lo.z, a_lo.w, a_hi.x, a_hi.y, a_hi.z, a_hi.w};
        const float bv[8] = {b_lo.x, b_lo.y, b_lo.z, b_lo.w, b_hi.x, b_hi.y, b_hi.z, b_hi.w};
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
          for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
      }
      if (more) {  // buffer cur^1 was last read before the previous barrier
        load_a.store(smem_a[cur ^ 1], tid);
        load_b.store(smem_b[cur ^ 1], tid);
      }
      __syncthreads();
    }
  }

  // Epilogue: bias, activation, store (float4 where the row allows).
  float* c = static_cast<float*>(p.c) + batch * p.batch_stride_c;
  const bool has_bias = p.bias != nullptr;
  float bias_v[8];
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int col = n0 + col_base + (j >> 2) * 32 + (j & 3);
    bias_v[j] = has_bias && col < N ? p.bias[col] : 0.f;
  }
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int row = m0 + row_base + (i >> 2) * 16 + (i & 3);
    if (row >= M) continue;
    float* c_row = c + row * p.ldc;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int col = n0 + col_base + h * 32;
      float out[4];
#pragma unroll
      for (int t = 0; t < 4; ++t) {
        float v = acc[i][h * 4 + t];
        if (has_bias) v += bias_v[h * 4 + t];
        out[t] = gemm_detail::activate(v, p.act);
      }
      if (vec_c && col + 4 <= N) {
        *reinterpret_cast<float4*>(c_row + col) = make_float4(out[0], out[1], out[2], out[3]);
      } else {
#pragma unroll
        for (int t = 0; t < 4; ++t)
          if (col + t < N) c_row[col + t] = out[t];
      }
    }
  }
}

template <bool kTransA, bool kTransB, class Config>
cudaError_t launch_config(const GemmArgs& p, dim3 grid, cudaStream_t stream) {
  const bool vec_a = gemm_detail::aligned(p.a, 16) && p.lda % 4 == 0 && p.batch_stride_a % 4 == 0;
  const bool vec_b = gemm_detail::aligned(p.b, 16) && p.ldb % 4 == 0 && p.batch_stride_b % 4 == 0;
  const bool vec_c = gemm_detail::aligned(p.c, 16) && p.ldc % 4 == 0 && p.batch_stride_c % 4 == 0;
  sgemm_128x128_kernel<kTransA, kTransB, Config><<<grid, kThreads, 0, stream>>>(p, vec_a, vec_b, vec_c);
  return cudaGetLastError();
}

template <bool kTransA, bool kTransB>
cudaError_t launch(const GemmArgs& p, dim3 grid, cudaStream_t stream) {
  if (p.variant == kSgemmOneBlockK16) return launch_config<kTransA, kTransB, OneBlockK16>(p, grid, stream);
  return launch_config<kTransA, kTransB, TwoBlocksK8>(p, grid, stream);
}

}  // namespace

cudaError_t sgemm_f32(const GemmArgs& p, cudaStream_t stream) {
  const cudaError_t err = gemm_detail::validate(p);
  if (err != cudaSuccess) return err;
  if (p.variant < kSgemmDefault || p.variant > kSgemmOneBlockK16) return cudaErrorInvalidValue;
  if (p.m == 0 || p.n == 0 || p.batch == 0) return cudaSuccess;
  const std::int64_t tiles = gemm_detail::tile_count(p, kTileM, kTileN);
  if (tiles > INT_MAX) return cudaErrorInvalidValue;
  const dim3 grid = gemm_detail::grid_for(p, tiles);
  if (p.trans_a) return p.trans_b ? launch<true, true>(p, grid, stream) : launch<true, false>(p, grid, stream);
  return p.trans_b ? launch<false, true>(p, grid, stream) : launch<false, false>(p, grid, stream);
}

}  // namespace cuda
}  // namespace pyfastnn
