// Tiled attention on the CUDA cores (fp32 FMA), forward and backward, for any
// element type (half types are widened to float when a tile is loaded) and
// head sizes up to 128.
//
// Tiles: 64 queries x 64 keys, 256 threads as a 16 x 16 grid (tx fastest).
// A thread owns rows ty + 16*r (r < 4) and columns tx + 16*c of every tile
// product, so a row of a score tile lives in one half-warp and its max/sum are
// four xor-shuffles. Tiles are float, row-major, padded to an odd leading
// dimension (kD + 1, 64 + 1): the column walks of the products (16 rows read
// at one column by a half-warp) then hit 16 different banks.
//
// Forward: one block per (query tile, batch*head); Q stays in shared memory,
// K/V tiles stream through it; the online softmax state (m, l) is in
// registers, P goes through shared memory into P.V.
// Backward (FlashAttention-2, no atomics, hence deterministic): delta_i =
// rowsum(dO*O) first (attention_reference.cu); then one block per key tile
// accumulates dK, dV over the query tiles, and one block per query tile
// accumulates dQ over the key tiles, each recomputing P from the saved lse.
#include "cuda/attention/attention_common.cuh"

namespace pyfastnn {
namespace cuda {
namespace attn {

namespace {

constexpr int kTile = 64;
constexpr int kThreads = 256;
constexpr int kLdP = kTile + 1;  // leading dimension of the 64 x 64 score tiles

template <int kD>
struct SimtShape {
  static_assert(kD % 16 == 0 && kD <= kSimtMaxD, "head-size bucket");
  static constexpr int kLd = kD + 1;
  static constexpr int kTileFloats = kTile * kLd;
  static constexpr int kCols = kD / 16;  // output columns per thread: tx + 16*c
  static constexpr std::size_t kForwardSmem = sizeof(float) * (3 * kTileFloats + kTile * kLdP);
  static constexpr std::size_t kDkDvSmem = sizeof(float) * (4 * kTileFloats + 2 * kTile * kLdP);
  static constexpr std::size_t kDqSmem = sizeof(float) * (4 * kTileFloats + kTile * kLdP);
};

// Rows [row0, row0 + 64) of a row-major (N, D) matrix as floats, zero-filled
// past N and past D (up to kD), so padded rows/columns add nothing to a product.
template <class T, int kD>
__device__ __forceinline__ void load_rows(float* dst, const T* __restrict__ src, std::int64_t row0, std::int64_t N,
                                          int D) {
  constexpr int kLd = kD + 1;
  for (int e = threadIdx.x; e < kTile * kD; e += kThreads) {
    const int r = e / kD, d = e % kD;
    float val = 0.f;
    if (d < D && row0 + r < N) val = to_float(src[(row0 + r) * D + d]);
    dst[r * kLd + d] = val;
  }
}

// acc[r][c] += sum_{d < D} A[ty + 16r][d] * B[tx + 16c][d]  (A . B^T on two row-major tiles).
// The depth is rounded up to a multiple of 4 (the tiles are zero past D up to
// kD), so the loop has no remainder.
template <int kLd>
__device__ __forceinline__ void dot_tile(float (&acc)[4][4], const float* A, const float* B, int D, int tx, int ty) {
  const float* a = A + ty * kLd;
  const float* b = B + tx * kLd;
  const int depth = (D + 3) & ~3;
  for (int d0 = 0; d0 < depth; d0 += 4) {
#pragma unroll
    for (int d = d0; d < d0 + 4; ++d) {
      float av[4], bv[4];
#pragma unroll
      for (int r = 0; r < 4; ++r) av[r] = a[16 * r * kLd + d];
#pragma unroll
      for (int c = 0; c < 4; ++c) bv[c] = b[16 * c * kLd + d];
#pragma unroll
      for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int c = 0; c < 4; ++c) acc[r][c] = fmaf(av[r], bv[c], acc[r][c]);
    }
  }
}

// acc[r][c] += sum_{k < 64} A[(ty + 16r) * a_row + k * a_k] * B[k][tx + 16c]:
// a 64-deep product with a score tile read by rows (a_row = kLdP, a_k = 1)
// or by columns (a_row = 1, a_k = kLdP, i.e. its transpose).
template <int kCols, int kLd>
__device__ __forceinline__ void mac_tile(float (&acc)[4][kCols], const float* A, int a_row, int a_k, const float* B,
                                         int tx, int ty) {
  const float* a = A + ty * a_row;
  const float* b = B + tx;
#pragma unroll 4
  for (int k = 0; k < kTile; ++k) {
    float av[4], bv[kCols];
#pragma unroll
    for (int r = 0; r < 4; ++r) av[r] = a[16 * r * a_row + k * a_k];
#pragma unroll
    for (int c = 0; c < kCols; ++c) bv[c] = b[k * kLd + 16 * c];
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
      for (int c = 0; c < kCols; ++c) acc[r][c] = fmaf(av[r], bv[c], acc[r][c]);
  }
}

// Reductions over the 16 threads (one half-warp) that share a tile row.
__device__ __forceinline__ float row_max16(float v) {
#pragma unroll
  for (int off = 8; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}
__device__ __forceinline__ float row_sum16(float v) {
#pragma unroll
  for (int off = 8; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

template <class T, int kD>
__global__ void __launch_bounds__(kThreads, 1) forward_simt_kernel(AttentionForwardArgs a, std::int64_t num_q_tiles) {
  using S = SimtShape<kD>;
  extern __shared__ float smem[];
  float* sQ = smem;
  float* sK = sQ + S::kTileFloats;
  float* sV = sK + S::kTileFloats;
  float* sP = sV + S::kTileFloats;

  const TileIndex ti = tile_index(num_q_tiles, a.causal);
  const std::int64_t bh = ti.bh, b = bh / a.H, h = bh % a.H, i0 = ti.tile * kTile;
  const int D = static_cast<int>(a.D);
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const T* q = static_cast<const T*>(a.q) + bh * a.Nq * a.D;
  const T* k = static_cast<const T*>(a.k) + bh * a.Nk * a.D;
  const T* v = static_cast<const T*>(a.v) + bh * a.Nk * a.D;
  const float scale_log2 = a.scale * kLog2e;

  load_rows<T, kD>(sQ, q, i0, a.Nq, D);
  float o[4][S::kCols], m[4], l[4];
  std::int64_t mask_row[4];
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.f;
    const std::int64_t i = i0 + ty + 16 * r;
    mask_row[r] = a.mask.kind != AttentionMaskKind::none && i < a.Nq ? mask_row_offset(a.mask, b, h, i) : 0;
#pragma unroll
    for (int c = 0; c < S::kCols; ++c) o[r][c] = 0.f;
  }

  const std::int64_t kend = key_end(a.causal, i0, kTile, a.Nq, a.Nk);
  for (std::int64_t j0 = 0; j0 < kend; j0 += kTile) {
    __syncthreads();  // the previous tile's P.V is done with sK, sV, sP
    load_rows<T, kD>(sK, k, j0, a.Nk, D);
    load_rows<T, kD>(sV, v, j0, a.Nk, D);
    __syncthreads();

    float s[4][4] = {};
    dot_tile<S::kLd>(s, sQ, sK, D, tx, ty);
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const std::int64_t i = i0 + ty + 16 * r;
      float tile_max = -INFINITY;
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const std::int64_t j = j0 + tx + 16 * c;
        float x = s[r][c] * scale_log2;
        if (j >= a.Nk || i >= a.Nq || (a.causal && j > i))
          x = -INFINITY;
        else
          x = apply_mask_log2(x, a.mask, mask_row[r], j);
        s[r][c] = x;
        tile_max = fmaxf(tile_max, x);
      }
      const float m_new = fmaxf(m[r], row_max16(tile_max));
      // A row with every key so far masked keeps m = -inf; exponents are then
      // taken against 0 so that they give 0 instead of NaN.
      const float m_use = m_new == -INFINITY ? 0.f : m_new;
      const float alpha = exp2f(m[r] - m_use);
      float sum = 0.f;
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const float p = exp2f(s[r][c] - m_use);
        sP[(ty + 16 * r) * kLdP + tx + 16 * c] = p;
        sum += p;
      }
      l[r] = l[r] * alpha + row_sum16(sum);
      m[r] = m_new;
#pragma unroll
      for (int c = 0; c < S::kCols; ++c) o[r][c] *= alpha;
    }
    __syncthreads();
    mac_tile<S::kCols, S::kLd>(o, sP, kLdP, 1, sV, tx, ty);
  }

  T* out = static_cast<T*>(a.out) + bh * a.Nq * a.D;
  float* lse = a.lse + bh * a.Nq;
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const std::int64_t i = i0 + ty + 16 * r;
    if (i >= a.Nq) continue;
    const float inv = l[r] > 0.f ? 1.f / l[r] : 0.f;
#pragma unroll
    for (int c = 0; c < S::kCols; ++c)
      if (tx + 16 * c < D) out[i * D + tx + 16 * c] = from_float<T>(o[r][c] * inv);
    if (tx == 0) lse[i] = l[r] > 0.f ? m[r] * kLn2 + logf(l[r]) : -INFINITY;
  }
}

// P and dS of one (query tile, key tile) pair at the thread's 4 x 4 entries:
// P = exp(score - lse) (0 where masked, past the ends, or for an empty row
// whose lse is -inf), dS = P * (dP - delta) * scale.
struct BackwardRows {
  float lse2[4];   // lse in base-2 units, -inf for rows past Nq or fully masked
  float delta[4];
  std::int64_t mask_row[4];
};

template <int kLd>
__device__ __forceinline__ void probabilities_and_grads(const AttentionBackwardArgs& a, const float* sQ,
                                                        const float* sK, const float* sdO, const float* sV,
                                                        const BackwardRows& rows, std::int64_t i0, std::int64_t j0,
                                                        int tx, int ty, float (&p)[4][4], float (&ds)[4][4]) {
  const int D = static_cast<int>(a.D);
  float s[4][4] = {}, dp[4][4] = {};
  dot_tile<kLd>(s, sQ, sK, D, tx, ty);
  dot_tile<kLd>(dp, sdO, sV, D, tx, ty);
  const float scale_log2 = a.scale * kLog2e;
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const std::int64_t i = i0 + ty + 16 * r;
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      const std::int64_t j = j0 + tx + 16 * c;
      float prob = 0.f;
      if (rows.lse2[r] != -INFINITY && j < a.Nk && !(a.causal && j > i)) {
        const float x = apply_mask_log2(s[r][c] * scale_log2, a.mask, rows.mask_row[r], j);
        prob = exp2f(x - rows.lse2[r]);
      }
      p[r][c] = prob;
      ds[r][c] = prob * (dp[r][c] - rows.delta[r]) * a.scale;
    }
  }
}

__device__ __forceinline__ BackwardRows backward_rows(const AttentionBackwardArgs& a, std::int64_t bh,
                                                      std::int64_t i0, int ty) {
  BackwardRows rows;
  const std::int64_t b = bh / a.H, h = bh % a.H;
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const std::int64_t i = i0 + ty + 16 * r;
    const bool valid = i < a.Nq;
    rows.lse2[r] = valid ? a.lse[bh * a.Nq + i] * kLog2e : -INFINITY;
    rows.delta[r] = valid ? a.delta[bh * a.Nq + i] : 0.f;
    rows.mask_row[r] = valid && a.mask.kind != AttentionMaskKind::none ? mask_row_offset(a.mask, b, h, i) : 0;
  }
  return rows;
}

template <class T, int kD>
__global__ void __launch_bounds__(kThreads, 1)
    backward_dkdv_simt_kernel(AttentionBackwardArgs a, std::int64_t num_k_tiles) {
  using S = SimtShape<kD>;
  extern __shared__ float smem[];
  float* sK = smem;
  float* sV = sK + S::kTileFloats;
  float* sQ = sV + S::kTileFloats;
  float* sdO = sQ + S::kTileFloats;
  float* sP = sdO + S::kTileFloats;
  float* sdS = sP + kTile * kLdP;

  const TileIndex ti = tile_index(num_k_tiles, false);
  const std::int64_t bh = ti.bh, j0 = ti.tile * kTile;
  const int D = static_cast<int>(a.D);
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const T* q = static_cast<const T*>(a.q) + bh * a.Nq * a.D;
  const T* dO = static_cast<const T*>(a.grad_out) + bh * a.Nq * a.D;
  const T* k = static_cast<const T*>(a.k) + bh * a.Nk * a.D;
  const T* v = static_cast<const T*>(a.v) + bh * a.Nk * a.D;

  load_rows<T, kD>(sK, k, j0, a.Nk, D);
  load_rows<T, kD>(sV, v, j0, a.Nk, D);
  float dk[4][S::kCols] = {}, dv[4][S::kCols] = {};  // keys ty + 16r, dims tx + 16c

  // Causal: queries before j0 see none of this tile's keys.
  for (std::int64_t i0 = a.causal ? j0 : 0; i0 < a.Nq; i0 += kTile) {
    __syncthreads();  // the previous query tile's products are done with sQ, sdO, sP, sdS
    load_rows<T, kD>(sQ, q, i0, a.Nq, D);
    load_rows<T, kD>(sdO, dO, i0, a.Nq, D);
    __syncthreads();
    const BackwardRows rows = backward_rows(a, bh, i0, ty);
    float p[4][4], ds[4][4];
    probabilities_and_grads<S::kLd>(a, sQ, sK, sdO, sV, rows, i0, j0, tx, ty, p, ds);
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        sP[(ty + 16 * r) * kLdP + tx + 16 * c] = p[r][c];
        sdS[(ty + 16 * r) * kLdP + tx + 16 * c] = ds[r][c];
      }
    __syncthreads();
    mac_tile<S::kCols, S::kLd>(dv, sP, 1, kLdP, sdO, tx, ty);   // dV += P^T dO
    mac_tile<S::kCols, S::kLd>(dk, sdS, 1, kLdP, sQ, tx, ty);   // dK += dS^T Q
  }

  T* gk = static_cast<T*>(a.grad_k) + bh * a.Nk * a.D;
  T* gv = static_cast<T*>(a.grad_v) + bh * a.Nk * a.D;
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const std::int64_t j = j0 + ty + 16 * r;
    if (j >= a.Nk) continue;
#pragma unroll
    for (int c = 0; c < S::kCols; ++c)
      if (tx + 16 * c < D) {
        gk[j * D + tx + 16 * c] = from_float<T>(dk[r][c]);
        gv[j * D + tx + 16 * c] = from_float<T>(dv[r][c]);
      }
  }
}

template <class T, int kD>
__global__ void __launch_bounds__(kThreads, 1) backward_dq_simt_kernel(AttentionBackwardArgs a, std::int64_t num_q_tiles) {
  using S = SimtShape<kD>;
  extern __shared__ float smem[];
  float* sQ = smem;
  float* sdO = sQ + S::kTileFloats;
  float* sK = sdO + S::kTileFloats;
  float* sV = sK + S::kTileFloats;
  float* sdS = sV + S::kTileFloats;

  const TileIndex ti = tile_index(num_q_tiles, a.causal);
  const std::int64_t bh = ti.bh, i0 = ti.tile * kTile;
  const int D = static_cast<int>(a.D);
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const T* q = static_cast<const T*>(a.q) + bh * a.Nq * a.D;
  const T* dO = static_cast<const T*>(a.grad_out) + bh * a.Nq * a.D;
  const T* k = static_cast<const T*>(a.k) + bh * a.Nk * a.D;
  const T* v = static_cast<const T*>(a.v) + bh * a.Nk * a.D;

  load_rows<T, kD>(sQ, q, i0, a.Nq, D);
  load_rows<T, kD>(sdO, dO, i0, a.Nq, D);
  const BackwardRows rows = backward_rows(a, bh, i0, ty);
  float dq[4][S::kCols] = {};  // queries ty + 16r, dims tx + 16c

  const std::int64_t kend = key_end(a.causal, i0, kTile, a.Nq, a.Nk);
  for (std::int64_t j0 = 0; j0 < kend; j0 += kTile) {
    __syncthreads();  // the previous key tile's dS.K is done with sK, sdS
    load_rows<T, kD>(sK, k, j0, a.Nk, D);
    load_rows<T, kD>(sV, v, j0, a.Nk, D);
    __syncthreads();
    float p[4][4], ds[4][4];
    probabilities_and_grads<S::kLd>(a, sQ, sK, sdO, sV, rows, i0, j0, tx, ty, p, ds);
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
      for (int c = 0; c < 4; ++c) sdS[(ty + 16 * r) * kLdP + tx + 16 * c] = ds[r][c];
    __syncthreads();
    mac_tile<S::kCols, S::kLd>(dq, sdS, kLdP, 1, sK, tx, ty);  // dQ += dS K
  }

  T* gq = static_cast<T*>(a.grad_q) + bh * a.Nq * a.D;
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const std::int64_t i = i0 + ty + 16 * r;
    if (i >= a.Nq) continue;
#pragma unroll
    for (int c = 0; c < S::kCols; ++c)
      if (tx + 16 * c < D) gq[i * D + tx + 16 * c] = from_float<T>(dq[r][c]);
  }
}

template <class T, int kD>
cudaError_t forward_for(const AttentionForwardArgs& a, cudaStream_t stream) {
  using S = SimtShape<kD>;
  const std::int64_t tiles = (a.Nq + kTile - 1) / kTile;
  unsigned blocks = 0;
  if (cudaError_t e = grid_size(tiles * a.B * a.H, &blocks)) return e;
  auto kernel = forward_simt_kernel<T, kD>;
  if (cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(S::kForwardSmem)))
    return e;
  kernel<<<blocks, kThreads, S::kForwardSmem, stream>>>(a, tiles);
  return cudaGetLastError();
}

template <class T, int kD>
cudaError_t backward_for(const AttentionBackwardArgs& a, cudaStream_t stream) {
  using S = SimtShape<kD>;
  const std::int64_t q_tiles = (a.Nq + kTile - 1) / kTile, k_tiles = (a.Nk + kTile - 1) / kTile;
  unsigned dkdv_blocks = 0, dq_blocks = 0;
  if (cudaError_t e = grid_size(k_tiles * a.B * a.H, &dkdv_blocks)) return e;
  if (cudaError_t e = grid_size(q_tiles * a.B * a.H, &dq_blocks)) return e;
  auto dkdv = backward_dkdv_simt_kernel<T, kD>;
  auto dq = backward_dq_simt_kernel<T, kD>;
  if (cudaError_t e = cudaFuncSetAttribute(dkdv, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(S::kDkDvSmem)))
    return e;
  if (cudaError_t e =
          cudaFuncSetAttribute(dq, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(S::kDqSmem)))
    return e;
  dkdv<<<dkdv_blocks, kThreads, S::kDkDvSmem, stream>>>(a, k_tiles);
  if (cudaError_t e = cudaGetLastError()) return e;
  dq<<<dq_blocks, kThreads, S::kDqSmem, stream>>>(a, q_tiles);
  return cudaGetLastError();
}

template <class T>
cudaError_t forward_dispatch(const AttentionForwardArgs& a, cudaStream_t stream) {
  if (a.D <= 32) return forward_for<T, 32>(a, stream);
  if (a.D <= 64) return forward_for<T, 64>(a, stream);
  return forward_for<T, 128>(a, stream);
}

template <class T>
cudaError_t backward_dispatch(const AttentionBackwardArgs& a, cudaStream_t stream) {
  if (a.D <= 32) return backward_for<T, 32>(a, stream);
  if (a.D <= 64) return backward_for<T, 64>(a, stream);
  return backward_for<T, 128>(a, stream);
}

}  // namespace

std::size_t simt_smem_bytes(std::int64_t D, bool backward) {
  auto pick = [&](auto shape) -> std::size_t {
    using S = decltype(shape);
    return backward ? (S::kDkDvSmem > S::kDqSmem ? S::kDkDvSmem : S::kDqSmem) : S::kForwardSmem;
  };
  if (D <= 32) return pick(SimtShape<32>{});
  if (D <= 64) return pick(SimtShape<64>{});
  return pick(SimtShape<128>{});
}

cudaError_t forward_simt(const AttentionForwardArgs& a, AttentionDType dt, cudaStream_t stream) {
  if (a.D < 1 || a.D > kSimtMaxD) return cudaErrorNotSupported;
  switch (dt) {
    case AttentionDType::f32: return forward_dispatch<float>(a, stream);
    case AttentionDType::f16: return forward_dispatch<__half>(a, stream);
    case AttentionDType::bf16: return forward_dispatch<__nv_bfloat16>(a, stream);
  }
  return cudaErrorNotSupported;
}

cudaError_t backward_simt(const AttentionBackwardArgs& a, AttentionDType dt, cudaStream_t stream) {
  if (a.D < 1 || a.D > kSimtMaxD) return cudaErrorNotSupported;
  switch (dt) {
    case AttentionDType::f32: return backward_dispatch<float>(a, stream);
    case AttentionDType::f16: return backward_dispatch<__half>(a, stream);
    case AttentionDType::bf16: return backward_dispatch<__nv_bfloat16>(a, stream);
  }
  return cudaErrorNotSupported;
}

}  // namespace attn
}  // namespace cuda
}  // namespace pyfastnn
