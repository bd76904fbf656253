// FlashAttention-2 backward on tensor cores, fp16/bf16 in, fp32 accumulators,
// head sizes 64 and 128. Two kernels after the delta pass
// (delta_i = rowsum(dO_i * O_i), attention_reference.cu), no atomics (so the
// result is deterministic), P recomputed from the saved lse:
//
// dK/dV: one block of 4 warps per 64-key tile, a warp per 16 keys. Working in
//   the transposed space (rows = keys) keeps every product in registers:
//     S^T  = K Q^T      A = K fragments (registers), B = Q tile (ldmatrix)
//     dP^T = V dO^T     A = V fragments, B = dO tile (ldmatrix)
//     P^T  = exp(S^T*scale - lse_col), dS^T = P^T (dP^T - delta_col) * scale
//     dV  += P^T dO     A = P^T from the accumulators, B = dO (ldmatrix.trans)
//     dK  += dS^T Q     A = dS^T, B = Q (ldmatrix.trans)
//   The Q/dO tiles (and their lse/delta) stream through a double buffer.
// dQ: one block of 4 warps per 64-query tile, a warp per 16 queries:
//     S = Q K^T, dP = dO V^T (K, V tiles with plain ldmatrix),
//     dS = P (dP - delta) * scale, dQ += dS K (ldmatrix.trans on K);
//   the K/V tiles stream through a double buffer.
// Fragment layouts: mma_primitives.cuh.
#include "cuda/attention/attention_common.cuh"
#include "cuda/attention/mma_primitives.cuh"

namespace pyfastnn {
namespace cuda {
namespace attn {

namespace {

template <int kD_, int kCols_, bool kRowFragsInRegs_>
struct BackwardTraits {
  static constexpr int kD = kD_;
  // The warp's own 16-row operands (K and V, or Q and dO) held as A fragments
  // for the whole kernel; else re-read from shared memory per k-step.
  static constexpr bool kRowFragsInRegs = kRowFragsInRegs_;
  static constexpr int kWarps = 4;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kRows = 16 * kWarps;  // the block's own tile (keys for dK/dV, queries for dQ)
  static constexpr int kCols = kCols_;       // the streamed tile (queries for dK/dV, keys for dQ)
  static constexpr int kKSteps = kD / 16;
  static constexpr int kCTiles = kCols / 8;  // 8-column tiles of S / dP
  static constexpr int kDTiles = kD / 8;     // 8-column tiles of the gradients
  static constexpr int kOwnElems = kRows * kD;
  static constexpr int kColElems = kCols * kD;
  // own tiles (2) + streamed tiles (2 operands x 2 buffers), 16-bit elements,
  // plus lse/delta of the streamed columns (dK/dV kernel only).
  static constexpr std::size_t kSmemBytes =
      std::size_t(2 * kOwnElems + 4 * kColElems) * 2 + 2 * 2 * kCols * sizeof(float);
  static_assert(kD % 64 == 0 && kCols % 16 == 0, "tile shapes");
};

// D = 64: 64-column tiles, the warp's A fragments in registers (~250
// registers, no spills). D = 128: dK + dV alone are 128 registers, so the
// streamed tiles are 32 wide and the A fragments are re-read (no spills).
template <int kD>
using Backward = BackwardTraits<kD, kD == 64 ? 64 : 32, kD == 64>;

template <class Cfg>
__device__ __forceinline__ void zero(float (&acc)[Cfg::kDTiles][4]) {
#pragma unroll
  for (int nt = 0; nt < Cfg::kDTiles; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[nt][e] = 0.f;
}

// acc (16 x kCols per warp) = A_w (16 x kD) . B^T with B a kCols x kD tile in shared
// memory, A_w the warp's 16 rows of `own` (from `frags` or re-read).
template <class T, class Cfg>
__device__ __forceinline__ void rows_times_tile_t(float (&acc)[Cfg::kCTiles][4],
                                                  const std::uint32_t (&frags)[Cfg::kRowFragsInRegs ? Cfg::kKSteps : 1][4],
                                                  const T* own, const T* tile, int warp, int lane) {
  constexpr int kD = Cfg::kD;
#pragma unroll
  for (int nt = 0; nt < Cfg::kCTiles; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[nt][e] = 0.f;
#pragma unroll
  for (int kk = 0; kk < Cfg::kKSteps; ++kk) {
    std::uint32_t a[4];
    if constexpr (Cfg::kRowFragsInRegs) {
#pragma unroll
      for (int e = 0; e < 4; ++e) a[e] = frags[kk][e];
    } else {
      ldmatrix_x4(a, own + swizzled<kD>(warp * 16 + lane % 16, kk * 2 + lane / 16));
    }
#pragma unroll
    for (int np = 0; np < Cfg::kCTiles / 2; ++np) {
      std::uint32_t b[4];
      ldmatrix_x4(b, tile + swizzled<kD>(np * 16 + (lane / 16) * 8 + lane % 8, kk * 2 + (lane / 8) % 2));
      MmaOps<T>::mma(acc[2 * np], a, b[0], b[1]);
      MmaOps<T>::mma(acc[2 * np + 1], a, b[2], b[3]);
    }
  }
}

// acc (16 x kD per warp) += P_w (16 x kCols, from accumulators) . tile (kCols x kD).
template <class T, class Cfg>
__device__ __forceinline__ void probs_times_tile(float (&acc)[Cfg::kDTiles][4], const float (&p)[Cfg::kCTiles][4],
                                                 const T* tile, int lane) {
  constexpr int kD = Cfg::kD;
#pragma unroll
  for (int kk = 0; kk < Cfg::kCols / 16; ++kk) {
    const std::uint32_t a[4] = {MmaOps<T>::pack(p[2 * kk][0], p[2 * kk][1]), MmaOps<T>::pack(p[2 * kk][2], p[2 * kk][3]),
                                MmaOps<T>::pack(p[2 * kk + 1][0], p[2 * kk + 1][1]),
                                MmaOps<T>::pack(p[2 * kk + 1][2], p[2 * kk + 1][3])};
#pragma unroll
    for (int dp = 0; dp < kD / 16; ++dp) {
      std::uint32_t b[4];
      ldmatrix_x4_trans(b, tile + swizzled<kD>(kk * 16 + ((lane / 8) % 2) * 8 + lane % 8, dp * 2 + lane / 16));
      MmaOps<T>::mma(acc[2 * dp], a, b[0], b[1]);
      MmaOps<T>::mma(acc[2 * dp + 1], a, b[2], b[3]);
    }
  }
}

template <class T, class Cfg>
__device__ __forceinline__ void load_row_frags(std::uint32_t (&frags)[Cfg::kRowFragsInRegs ? Cfg::kKSteps : 1][4],
                                               const T* own, int warp, int lane) {
  if constexpr (Cfg::kRowFragsInRegs) {
#pragma unroll
    for (int kk = 0; kk < Cfg::kKSteps; ++kk)
      ldmatrix_x4(frags[kk], own + swizzled<Cfg::kD>(warp * 16 + lane % 16, kk * 2 + lane / 16));
  }
}

// Writes the warp's 16 rows of a (N, kD) gradient from its accumulators.
template <class T, class Cfg>
__device__ __forceinline__ void store_rows(T* dst, const float (&acc)[Cfg::kDTiles][4], std::int64_t row_first,
                                           std::int64_t N, int lane) {
  const int g = lane / 4, t4 = lane % 4;
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    const std::int64_t row = row_first + g + hh * 8;
    if (row >= N) continue;
#pragma unroll
    for (int nt = 0; nt < Cfg::kDTiles; ++nt)
      *reinterpret_cast<std::uint32_t*>(dst + row * Cfg::kD + nt * 8 + 2 * t4) =
          MmaOps<T>::pack(acc[nt][2 * hh], acc[nt][2 * hh + 1]);
  }
}

template <class T, class Cfg>
__global__ void __launch_bounds__(Cfg::kThreads)
    backward_dkdv_mma_kernel(AttentionBackwardArgs a, std::int64_t num_k_tiles) {
  constexpr int kD = Cfg::kD, kCols = Cfg::kCols, kThreads = Cfg::kThreads, kTile = Cfg::kColElems;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* sK = reinterpret_cast<T*>(smem_raw);
  T* sV = sK + Cfg::kOwnElems;
  T* sQ = sV + Cfg::kOwnElems;  // 2 buffers
  T* sdO = sQ + 2 * kTile;      // 2 buffers
  float* sLse = reinterpret_cast<float*>(sdO + 2 * kTile);  // 2 x kCols, base-2 units, -inf = no contribution
  float* sDelta = sLse + 2 * kCols;                         // 2 x kCols

  const TileIndex ti = tile_index(num_k_tiles, false);
  const std::int64_t bh = ti.bh, b = bh / a.H, h = bh % a.H, j0 = ti.tile * Cfg::kRows;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t4 = lane % 4;
  const std::int64_t warp_first_key = j0 + warp * 16;
  const T* q = static_cast<const T*>(a.q) + bh * a.Nq * kD;
  const T* dO = static_cast<const T*>(a.grad_out) + bh * a.Nq * kD;
  const T* k = static_cast<const T*>(a.k) + bh * a.Nk * kD;
  const T* v = static_cast<const T*>(a.v) + bh * a.Nk * kD;
  const float* lse = a.lse + bh * a.Nq;
  const float* delta = a.delta + bh * a.Nq;
  const float scale_log2 = a.scale * kLog2e;
  const bool has_mask = a.mask.kind != AttentionMaskKind::none;

  // Causal: queries before the tile's first key see none of its keys.
  const std::int64_t i_begin = a.causal ? (j0 / kCols) * kCols : 0;
  const int num_q_tiles = i_begin < a.Nq ? static_cast<int>((a.Nq - i_begin + kCols - 1) / kCols) : 0;

  // Column statistics of the next tile go through registers (one column per
  // thread) so their global-load latency hides behind the current tile's math.
  static_assert(kCols <= kThreads, "one streamed column per thread");
  float next_lse = -INFINITY, next_delta = 0.f;
  auto fetch_columns = [&](int t) {
    const std::int64_t i = i_begin + std::int64_t(t) * kCols + threadIdx.x;
    if (threadIdx.x < kCols && i < a.Nq) {
      next_lse = lse[i] * kLog2e;
      next_delta = delta[i];
    } else {
      next_lse = -INFINITY;
      next_delta = 0.f;
    }
  };
  auto store_columns = [&](int buf) {
    if (threadIdx.x < kCols) {
      sLse[buf * kCols + threadIdx.x] = next_lse;
      sDelta[buf * kCols + threadIdx.x] = next_delta;
    }
  };
  auto prefetch_tiles = [&](int t, int buf) {
    const std::int64_t i0 = i_begin + std::int64_t(t) * kCols;
    load_tile_async<kD, kCols, kThreads>(sQ + buf * kTile, q, i0, a.Nq);
    load_tile_async<kD, kCols, kThreads>(sdO + buf * kTile, dO, i0, a.Nq);
  };

  load_tile_async<kD, Cfg::kRows, kThreads>(sK, k, j0, a.Nk);
  load_tile_async<kD, Cfg::kRows, kThreads>(sV, v, j0, a.Nk);
  if (num_q_tiles > 0) {
    prefetch_tiles(0, 0);
    fetch_columns(0);
    store_columns(0);
  }
  cp_async_commit();

  std::uint32_t kf[Cfg::kRowFragsInRegs ? Cfg::kKSteps : 1][4], vf[Cfg::kRowFragsInRegs ? Cfg::kKSteps : 1][4];
  float dk[Cfg::kDTiles][4], dv[Cfg::kDTiles][4];
  zero<Cfg>(dk);
  zero<Cfg>(dv);

  for (int t = 0; t < num_q_tiles; ++t) {
    const int buf = t & 1;
    const bool has_next = t + 1 < num_q_tiles;
    cp_async_wait<0>();
    __syncthreads();  // tile t landed for all; everyone is done with buffer buf ^ 1
    if (has_next) {
      prefetch_tiles(t + 1, buf ^ 1);
      fetch_columns(t + 1);
    }
    cp_async_commit();
    if (t == 0) {
      load_row_frags<T, Cfg>(kf, sK, warp, lane);
      load_row_frags<T, Cfg>(vf, sV, warp, lane);
    }
    const std::int64_t i0 = i_begin + std::int64_t(t) * kCols;
    // Causal: a tile whose queries all precede the warp's keys adds nothing.
    if (!(a.causal && i0 + kCols - 1 < warp_first_key)) {
      const T* tQ = sQ + buf * kTile;
      const T* tdO = sdO + buf * kTile;
      const float* tLse = sLse + buf * kCols;
      const float* tDelta = sDelta + buf * kCols;

      float st[Cfg::kCTiles][4], dpt[Cfg::kCTiles][4];
      rows_times_tile_t<T, Cfg>(st, kf, sK, tQ, warp, lane);    // S^T = K Q^T
      rows_times_tile_t<T, Cfg>(dpt, vf, sV, tdO, warp, lane);  // dP^T = V dO^T
#pragma unroll
      for (int nt = 0; nt < Cfg::kCTiles; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int col = nt * 8 + 2 * t4 + (e & 1);
          const std::int64_t j = warp_first_key + g + (e >> 1) * 8, i = i0 + col;
          const float lse2 = tLse[col];
          float p = 0.f;
          if (lse2 != -INFINITY && j < a.Nk && !(a.causal && j > i)) {
            float x = st[nt][e] * scale_log2;
            if (has_mask) x = apply_mask_log2(x, a.mask, mask_row_offset(a.mask, b, h, i), j);
            p = fast_exp2(x - lse2);
          }
          st[nt][e] = p;
          dpt[nt][e] = p * (dpt[nt][e] - tDelta[col]) * a.scale;
        }
      probs_times_tile<T, Cfg>(dv, st, tdO, lane);  // dV += P^T dO
      probs_times_tile<T, Cfg>(dk, dpt, tQ, lane);  // dK += dS^T Q
    }
    if (has_next) store_columns(buf ^ 1);  // read after the next iteration's barrier
  }
  cp_async_wait<0>();  // nothing left in flight when the block exits

  store_rows<T, Cfg>(static_cast<T*>(a.grad_k) + bh * a.Nk * kD, dk, warp_first_key, a.Nk, lane);
  store_rows<T, Cfg>(static_cast<T*>(a.grad_v) + bh * a.Nk * kD, dv, warp_first_key, a.Nk, lane);
}

template <class T, class Cfg>
__global__ void __launch_bounds__(Cfg::kThreads)
    backward_dq_mma_kernel(AttentionBackwardArgs a, std::int64_t num_q_tiles) {
  constexpr int kD = Cfg::kD, kCols = Cfg::kCols, kThreads = Cfg::kThreads, kTile = Cfg::kColElems;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);
  T* sdO = sQ + Cfg::kOwnElems;
  T* sK = sdO + Cfg::kOwnElems;  // 2 buffers
  T* sV = sK + 2 * kTile;  // 2 buffers

  const TileIndex ti = tile_index(num_q_tiles, a.causal);
  const std::int64_t bh = ti.bh, b = bh / a.H, h = bh % a.H, i0 = ti.tile * Cfg::kRows;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t4 = lane % 4;
  const std::int64_t warp_first = i0 + warp * 16;
  const T* q = static_cast<const T*>(a.q) + bh * a.Nq * kD;
  const T* dO = static_cast<const T*>(a.grad_out) + bh * a.Nq * kD;
  const T* k = static_cast<const T*>(a.k) + bh * a.Nk * kD;
  const T* v = static_cast<const T*>(a.v) + bh * a.Nk * kD;
  const float scale_log2 = a.scale * kLog2e;
  const bool has_mask = a.mask.kind != AttentionMaskKind::none;
  const std::int64_t kend = key_end(a.causal, i0, Cfg::kRows, a.Nq, a.Nk);
  const int num_k_tiles = static_cast<int>((kend + kCols - 1) / kCols);

  float lse2[2], dlt[2];  // rows g and g + 8 of the warp
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    const std::int64_t i = warp_first + g + hh * 8;
    lse2[hh] = i < a.Nq ? a.lse[bh * a.Nq + i] * kLog2e : -INFINITY;
    dlt[hh] = i < a.Nq ? a.delta[bh * a.Nq + i] : 0.f;
  }

  load_tile_async<kD, Cfg::kRows, kThreads>(sQ, q, i0, a.Nq);
  load_tile_async<kD, Cfg::kRows, kThreads>(sdO, dO, i0, a.Nq);
  load_tile_async<kD, kCols, kThreads>(sK, k, 0, a.Nk);
  load_tile_async<kD, kCols, kThreads>(sV, v, 0, a.Nk);
  cp_async_commit();

  std::uint32_t qf[Cfg::kRowFragsInRegs ? Cfg::kKSteps : 1][4], of[Cfg::kRowFragsInRegs ? Cfg::kKSteps : 1][4];
  float dq[Cfg::kDTiles][4];
  zero<Cfg>(dq);

  for (int t = 0; t < num_k_tiles; ++t) {
    const int buf = t & 1;
    cp_async_wait<0>();
    __syncthreads();
    if (t + 1 < num_k_tiles) {
      load_tile_async<kD, kCols, kThreads>(sK + (buf ^ 1) * kTile, k, std::int64_t(t + 1) * kCols, a.Nk);
      load_tile_async<kD, kCols, kThreads>(sV + (buf ^ 1) * kTile, v, std::int64_t(t + 1) * kCols, a.Nk);
    }
    cp_async_commit();
    if (t == 0) {
      load_row_frags<T, Cfg>(qf, sQ, warp, lane);
      load_row_frags<T, Cfg>(of, sdO, warp, lane);
    }
    const std::int64_t j0 = std::int64_t(t) * kCols;
    if (a.causal && j0 > warp_first + 15) continue;  // every key of the tile follows the warp's queries
    const T* tK = sK + buf * kTile;
    const T* tV = sV + buf * kTile;

    float s[Cfg::kCTiles][4], dp[Cfg::kCTiles][4];
    rows_times_tile_t<T, Cfg>(s, qf, sQ, tK, warp, lane);    // S = Q K^T
    rows_times_tile_t<T, Cfg>(dp, of, sdO, tV, warp, lane);  // dP = dO V^T
#pragma unroll
    for (int nt = 0; nt < Cfg::kCTiles; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int hh = e >> 1;
        const std::int64_t i = warp_first + g + hh * 8, j = j0 + nt * 8 + 2 * t4 + (e & 1);
        float p = 0.f;
        if (lse2[hh] != -INFINITY && j < a.Nk && !(a.causal && j > i)) {
          float x = s[nt][e] * scale_log2;
          if (has_mask) x = apply_mask_log2(x, a.mask, mask_row_offset(a.mask, b, h, i), j);
          p = fast_exp2(x - lse2[hh]);
        }
        s[nt][e] = p * (dp[nt][e] - dlt[hh]) * a.scale;  // dS
      }
    probs_times_tile<T, Cfg>(dq, s, tK, lane);  // dQ += dS K
  }
  cp_async_wait<0>();

  store_rows<T, Cfg>(static_cast<T*>(a.grad_q) + bh * a.Nq * kD, dq, warp_first, a.Nq, lane);
}

template <class T, class Cfg>
cudaError_t launch_backward(const AttentionBackwardArgs& a, cudaStream_t stream) {
  const std::int64_t q_tiles = (a.Nq + Cfg::kRows - 1) / Cfg::kRows, k_tiles = (a.Nk + Cfg::kRows - 1) / Cfg::kRows;
  unsigned dkdv_blocks = 0, dq_blocks = 0;
  if (cudaError_t e = grid_size(k_tiles * a.B * a.H, &dkdv_blocks)) return e;
  if (cudaError_t e = grid_size(q_tiles * a.B * a.H, &dq_blocks)) return e;
  auto dkdv = backward_dkdv_mma_kernel<T, Cfg>;
  auto dq = backward_dq_mma_kernel<T, Cfg>;
  for (const void* kernel : {reinterpret_cast<const void*>(dkdv), reinterpret_cast<const void*>(dq)})
    if (cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             static_cast<int>(Cfg::kSmemBytes)))
      return e;
  dkdv<<<dkdv_blocks, Cfg::kThreads, Cfg::kSmemBytes, stream>>>(a, k_tiles);
  if (cudaError_t e = cudaGetLastError()) return e;
  dq<<<dq_blocks, Cfg::kThreads, Cfg::kSmemBytes, stream>>>(a, q_tiles);
  return cudaGetLastError();
}

template <class T>
cudaError_t backward_dispatch(const AttentionBackwardArgs& a, cudaStream_t stream) {
  if (a.D == 64) return launch_backward<T, Backward<64>>(a, stream);
  if (a.D == 128) return launch_backward<T, Backward<128>>(a, stream);
  return cudaErrorNotSupported;
}

}  // namespace

cudaError_t backward_mma(const AttentionBackwardArgs& a, AttentionDType dt, cudaStream_t stream) {
  switch (dt) {
    case AttentionDType::f16: return backward_dispatch<__half>(a, stream);
    case AttentionDType::bf16: return backward_dispatch<__nv_bfloat16>(a, stream);
    case AttentionDType::f32: break;
  }
  return cudaErrorNotSupported;
}

}  // namespace attn
}  // namespace cuda
}  // namespace pyfastnn
