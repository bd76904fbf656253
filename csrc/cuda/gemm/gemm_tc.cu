// fp16 / bf16 GEMM on the tensor cores: mma.sync.m16n8k16 with fp32
// accumulators, operands staged through shared memory by a 4-stage cp.async
// pipeline and read into fragments with ldmatrix.
//
// Block: 128 threads (4 warps as 2 x 2), a 128x128 tile of C, k in steps of
// kTileK = 32. Each warp owns a 64x64 piece: 4 (m16) x 8 (n8) mma tiles, 128
// fp32 accumulators per thread. Per 16-wide k step a warp issues 4 ldmatrix.x4
// for A, 4 for B and 32 mma. Two blocks fit an SM (64 KB shared memory each).
//
// Shared-memory tiles keep the layout the operand has in global memory, so
// every 16-byte cp.async copies 8 consecutive elements and all four transpose
// combinations run without a copy:
//   K-contiguous operand (A untransposed, B transposed): 128 rows x 32 k,
//     64-byte rows; fragments via ldmatrix.
//   M/N-contiguous operand (A transposed, B untransposed): 32 k-rows x 128,
//     256-byte rows; fragments via ldmatrix.trans.
// Both are XOR-swizzled at 16-byte granularity (see kmajor_offset and
// line_offset) so that the 8 row addresses of one ldmatrix phase hit 8
// different bank groups.
//
// Edges: a 16-byte chunk that runs past M, N or K is copied with cp.async's
// source size cut to the bytes inside the matrix and zero-filled; chunks
// wholly outside copy nothing and are zero-filled. Zeros contribute nothing to
// the products, and the epilogue stores only elements inside C.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <climits>
#include <cstdint>

#include "cuda/gemm/gemm_common.cuh"
#include "cuda/gemm/gemm_tc.h"

namespace pyfastnn {
namespace cuda {

namespace {

constexpr int kTileM = 128;
constexpr int kTileN = 128;
constexpr int kTileK = 32;
constexpr int kStages = 4;
constexpr int kThreads = 128;
constexpr int kElemBytes = 2;
constexpr int kTileBytes = kTileM * kTileK * kElemBytes;  // one operand, one stage: 8 KB
constexpr int kStageBytes = 2 * kTileBytes;
constexpr int kSmemBytes = kStages * kStageBytes;  // 64 KB
constexpr int kChunksPerThread = kTileBytes / 16 / kThreads;

static_assert(kTileM == kTileN, "A and B tiles share one shape");
static_assert(kTileK == 32, "kmajor_offset's swizzle assumes 4 chunks (64 bytes) per row");
static_assert(kTileM * kElemBytes == 256, "line_offset's swizzle assumes 16 chunks (256 bytes) per row");
static_assert(kChunksPerThread == 4, "loader shape");

// Byte offset of 16-byte chunk `chunk` (0..3) of row `row` in a K-contiguous
// tile (64-byte rows). Rows r and r+2 share banks; XOR-ing the chunk with
// bits 1..2 of the row spreads any 8 consecutive rows over all 8 bank groups.
__device__ __forceinline__ std::uint32_t kmajor_offset(int row, int chunk) {
  return static_cast<std::uint32_t>(row * 64 + ((chunk ^ ((row >> 1) & 3)) << 4));
}

// Byte offset of chunk `chunk` (0..15) of k-row `krow` in an M/N-contiguous
// tile (256-byte rows, all starting in bank 0): XOR with the row's low 3 bits.
__device__ __forceinline__ std::uint32_t line_offset(int krow, int chunk) {
  return static_cast<std::uint32_t>(krow * 256 + ((chunk ^ (krow & 7)) << 4));
}

// Bytes of a 16-byte chunk that lie inside the matrix, given how many
// elements remain from the chunk's first one.
__device__ __forceinline__ int chunk_bytes(int elems_left) {
  return elems_left >= 8 ? 16 : (elems_left > 0 ? elems_left * kElemBytes : 0);
}

__device__ __forceinline__ void cp_async_16(std::uint32_t smem_addr, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr), "l"(src), "r"(src_bytes)
               : "memory");
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(std::uint32_t (&r)[4], std::uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}

__device__ __forceinline__ void ldmatrix_x4_trans(std::uint32_t (&r)[4], std::uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}

template <typename T>
struct TcType;

template <>
struct TcType<__half> {
  __device__ static __forceinline__ void mma(float (&c)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
  __device__ static __forceinline__ void store_pair(__half* dst, float x, float y) {
    *reinterpret_cast<__half2*>(dst) = __floats2half2_rn(x, y);
  }
  __device__ static __forceinline__ void store_one(__half* dst, float x) { *dst = __float2half_rn(x); }
};

template <>
struct TcType<__nv_bfloat16> {
  __device__ static __forceinline__ void mma(float (&c)[4], const std::uint32_t (&a)[4], const std::uint32_t (&b)[2]) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
  __device__ static __forceinline__ void store_pair(__nv_bfloat16* dst, float x, float y) {
    *reinterpret_cast<__nv_bfloat162*>(dst) = __floats2bfloat162_rn(x, y);
  }
  __device__ static __forceinline__ void store_one(__nv_bfloat16* dst, float x) { *dst = __float2bfloat16_rn(x); }
};

// Issues the cp.async copies of one k-tile of an operand. kKContiguous: the
// operand's rows run along k (A untransposed / B transposed), `rows` is M or N
// and `tile_row0` the tile's first m or n. Otherwise the operand's rows are k
// and its columns m or n.
template <bool kKContiguous, typename T>
__device__ __forceinline__ void load_tile(std::uint32_t smem_tile, const T* base, std::int64_t ld, int tile_row0,
                                          int rows, int k0, int K, int tid) {
#pragma unroll
  for (int i = 0; i < kChunksPerThread; ++i) {
    const int idx = tid + i * kThreads;
    if (kKContiguous) {
      const int row = idx >> 2;  // 4 chunks per 32-wide k row
      const int chunk = idx & 3;
      const int g_row = tile_row0 + row;
      const int g_k = k0 + chunk * 8;
      const int bytes = g_row < rows ? chunk_bytes(K - g_k) : 0;
      const T* src = bytes > 0 ? base + g_row * ld + g_k : base;
      cp_async_16(smem_tile + kmajor_offset(row, chunk), src, bytes);
    } else {
      const int krow = idx >> 4;  // 16 chunks per 128-wide row
      const int chunk = idx & 15;
      const int g_k = k0 + krow;
      const int g_col = tile_row0 + chunk * 8;
      const int bytes = g_k < K ? chunk_bytes(rows - g_col) : 0;
      const T* src = bytes > 0 ? base + g_k * ld + g_col : base;
      cp_async_16(smem_tile + line_offset(krow, chunk), src, bytes);
    }
  }
}

// Shared-memory byte offset (within A's stage tile) this lane hands to
// ldmatrix for the A fragment of m16 tile `mt` at k offset `kk` (0 or 16):
// matrices 0..3 = (m 0-7, k 0-7), (m 8-15, k 0-7), (m 0-7, k 8-15),
// (m 8-15, k 8-15) — the a0..a3 registers of mma.m16n8k16.
template <bool kTransA>
__device__ __forceinline__ std::uint32_t a_fragment_offset(int warp_m, int mt, int kk, int lane) {
  const int m = warp_m * 64 + mt * 16;
  if (!kTransA) return kmajor_offset(m + (lane & 15), (kk >> 3) + (lane >> 4));
  const int krow = kk + (lane & 7) + ((lane >> 4) << 3);
  return line_offset(krow, (m >> 3) + ((lane >> 3) & 1));
}

// Same for B, covering two n8 tiles (2*np, 2*np+1): matrices 0..3 =
// (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15) — b0, b1
// of the first n8 tile, then b0, b1 of the second.
template <bool kTransB>
__device__ __forceinline__ std::uint32_t b_fragment_offset(int warp_n, int np, int kk, int lane) {
  const int n = warp_n * 64 + np * 16;
  if (kTransB) return kmajor_offset(n + (lane & 7) + ((lane >> 4) << 3), (kk >> 3) + ((lane >> 3) & 1));
  const int krow = kk + (lane & 7) + (((lane >> 3) & 1) << 3);
  return line_offset(krow, (n >> 3) + (lane >> 4));
}

template <bool kTransA, bool kTransB, typename T>
__global__ void __launch_bounds__(kThreads, 2) gemm_tc_128x128_kernel(GemmArgs p, bool pair_store) {
  extern __shared__ __align__(128) unsigned char tc_smem[];
  const std::uint32_t smem_base = static_cast<std::uint32_t>(__cvta_generic_to_shared(tc_smem));

  const int M = static_cast<int>(p.m);
  const int N = static_cast<int>(p.n);
  const int K = static_cast<int>(p.k);
  int tile_m, tile_n;
  gemm_detail::grouped_tile(blockIdx.x, (M + kTileM - 1) / kTileM, (N + kTileN - 1) / kTileN, &tile_m, &tile_n);
  const int m0 = tile_m * kTileM;
  const int n0 = tile_n * kTileN;

  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp_m = (tid >> 5) >> 1;
  const int warp_n = (tid >> 5) & 1;
  const int k_tiles = (K + kTileK - 1) / kTileK;

  const std::int64_t batch = gemm_detail::block_batch();
  if (batch >= p.batch) return;

  const T* a = static_cast<const T*>(p.a) + batch * p.batch_stride_a;
  const T* b = static_cast<const T*>(p.b) + batch * p.batch_stride_b;

  float acc[4][8][4];
#pragma unroll
  for (int mt = 0; mt < 4; ++mt)
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int r = 0; r < 4; ++r) acc[mt][nt][r] = 0.f;

  // Prologue: kStages-1 tiles in flight. Every iteration commits a group,
  // empty or not, so wait_group's count always means "tile kt has landed".
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < k_tiles) {
      const std::uint32_t stage = smem_base + s * kStageBytes;
      load_tile<!kTransA>(stage, a, p.lda, m0, M, s * kTileK, K, tid);
      load_tile<kTransB>(stage + kTileBytes, b, p.ldb, n0, N, s * kTileK, K, tid);
    }
    cp_async_commit();
  }

  for (int kt = 0; kt < k_tiles; ++kt) {
    cp_async_wait<kStages - 2>();
    // Tile kt is visible to all threads, and all threads are done reading
    // the stage the next copy overwrites (the one computed at kt-1).
    __syncthreads();
    const int next = kt + kStages - 1;
    if (next < k_tiles) {
      const std::uint32_t stage = smem_base + (next % kStages) * kStageBytes;
      load_tile<!kTransA>(stage, a, p.lda, m0, M, next * kTileK, K, tid);
      load_tile<kTransB>(stage + kTileBytes, b, p.ldb, n0, N, next * kTileK, K, tid);
    }
    cp_async_commit();

    const std::uint32_t smem_a = smem_base + (kt % kStages) * kStageBytes;
    const std::uint32_t smem_b = smem_a + kTileBytes;
#pragma unroll
    for (int kk = 0; kk < kTileK; kk += 16) {
      std::uint32_t a_frag[4][4];
      std::uint32_t b_frag[8][2];
#pragma unroll
      for (int mt = 0; mt < 4; ++mt) {
        const std::uint32_t addr = smem_a + a_fragment_offset<kTransA>(warp_m, mt, kk, lane);
        if (kTransA)
          ldmatrix_x4_trans(a_frag[mt], addr);
        else
          ldmatrix_x4(a_frag[mt], addr);
      }
#pragma unroll
      for (int np = 0; np < 4; ++np) {
        std::uint32_t r[4];
        const std::uint32_t addr = smem_b + b_fragment_offset<kTransB>(warp_n, np, kk, lane);
        if (kTransB)
          ldmatrix_x4(r, addr);
        else
          ldmatrix_x4_trans(r, addr);
        b_frag[2 * np][0] = r[0];
        b_frag[2 * np][1] = r[1];
        b_frag[2 * np + 1][0] = r[2];
        b_frag[2 * np + 1][1] = r[3];
      }
#pragma unroll
      for (int mt = 0; mt < 4; ++mt)
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) TcType<T>::mma(acc[mt][nt], a_frag[mt], b_frag[nt]);
    }
  }
  cp_async_wait<0>();  // only empty groups can be pending; leave none behind

  // Epilogue. Accumulator c0,c1 of an m16n8 tile sit at row lane/4, columns
  // 2*(lane%4)+{0,1}; c2,c3 eight rows lower.
  T* c = static_cast<T*>(p.c) + batch * p.batch_stride_c;
  const bool has_bias = p.bias != nullptr;
  float bias_v[8][2];
#pragma unroll
  for (int nt = 0; nt < 8; ++nt) {
    const int col = n0 + warp_n * 64 + nt * 8 + (lane & 3) * 2;
    bias_v[nt][0] = has_bias && col < N ? p.bias[col] : 0.f;
    bias_v[nt][1] = has_bias && col + 1 < N ? p.bias[col + 1] : 0.f;
  }
#pragma unroll
  for (int mt = 0; mt < 4; ++mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int row = m0 + warp_m * 64 + mt * 16 + (lane >> 2) + half * 8;
      if (row >= M) continue;
      T* c_row = c + row * p.ldc;
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
        const int col = n0 + warp_n * 64 + nt * 8 + (lane & 3) * 2;
        float x = acc[mt][nt][2 * half];
        float y = acc[mt][nt][2 * half + 1];
        if (has_bias) {
          x += bias_v[nt][0];
          y += bias_v[nt][1];
        }
        x = gemm_detail::activate(x, p.act);
        y = gemm_detail::activate(y, p.act);
        if (pair_store && col + 1 < N) {
          TcType<T>::store_pair(c_row + col, x, y);
        } else {
          if (col < N) TcType<T>::store_one(c_row + col, x);
          if (col + 1 < N) TcType<T>::store_one(c_row + col + 1, y);
        }
      }
    }
  }
}

template <bool kTransA, bool kTransB, typename T>
cudaError_t launch(const GemmArgs& p, dim3 grid, cudaStream_t stream) {
  auto kernel = gemm_tc_128x128_kernel<kTransA, kTransB, T>;
  // Above 48 KB a kernel must opt in; set on every launch because the
  // attribute belongs to the current device, which the caller may switch.
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes);
  if (err != cudaSuccess) return err;
  err = cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                             static_cast<int>(cudaSharedmemCarveoutMaxShared));
  if (err != cudaSuccess) return err;
  const bool pair_store = gemm_detail::aligned(p.c, 4) && p.ldc % 2 == 0 && p.batch_stride_c % 2 == 0;
  kernel<<<grid, kThreads, kSmemBytes, stream>>>(p, pair_store);
  return cudaGetLastError();
}

template <typename T>
cudaError_t gemm_tc(const GemmArgs& p, cudaStream_t stream) {
  const cudaError_t err = gemm_detail::validate(p);
  if (err != cudaSuccess) return err;
  if (p.m == 0 || p.n == 0 || p.batch == 0) return cudaSuccess;
  // cp.async copies 16 aligned bytes: every row start must be 16-byte aligned.
  if (p.k > 0) {
    if (!gemm_detail::aligned(p.a, 16) || !gemm_detail::aligned(p.b, 16)) return cudaErrorInvalidValue;
    if (p.lda % 8 != 0 || p.ldb % 8 != 0 || p.batch_stride_a % 8 != 0 || p.batch_stride_b % 8 != 0)
      return cudaErrorInvalidValue;
  }
  const std::int64_t tiles = gemm_detail::tile_count(p, kTileM, kTileN);
  if (tiles > INT_MAX) return cudaErrorInvalidValue;
  const dim3 grid = gemm_detail::grid_for(p, tiles);
  if (p.trans_a)
    return p.trans_b ? launch<true, true, T>(p, grid, stream) : launch<true, false, T>(p, grid, stream);
  return p.trans_b ? launch<false, true, T>(p, grid, stream) : launch<false, false, T>(p, grid, stream);
}

}  // namespace

cudaError_t gemm_tc_f16(const GemmArgs& args, cudaStream_t stream) { return gemm_tc<__half>(args, stream); }
cudaError_t gemm_tc_bf16(const GemmArgs& args, cudaStream_t stream) { return gemm_tc<__nv_bfloat16>(args, stream); }

}  // namespace cuda
}  // namespace pyfastnn
