// FlashAttention-2 forward on tensor cores, fp16/bf16 in, fp32 accumulators
// and softmax state, for head sizes 64 and 128.
//
// One block of 4 warps per (query tile, batch*head). Each warp owns
// 16 * kMTiles query rows (the block kBr = 64 * kMTiles) and keeps everything
// of them in registers: the Q fragments (loaded once), the 16 x 64 score tile
// per m-tile, the output accumulator and (m, l). Key/value tiles of 64 rows
// are double-buffered in shared memory with cp.async: tile t+1 is in flight
// while tile t is used. S = Q K^T uses ldmatrix on K (rows = keys, contiguous
// in the head dim, which is the col-major B operand); O += P V uses
// ldmatrix.trans on V; P goes from the S accumulators straight into A
// fragments (see mma_primitives.cuh). Causal: key tiles past the block's last
// row are never loaded, and a warp skips the tiles past its own last row.
#include "cuda/attention/attention_common.cuh"
#include "cuda/attention/mma_primitives.cuh"

namespace pyfastnn {
namespace cuda {
namespace attn {

namespace {

template <int kD_, int kMTiles_, int kBc_, bool kQInRegs_>
struct ForwardTraits {
  static constexpr int kD = kD_;
  static constexpr int kMTiles = kMTiles_;    // 16-row m-tiles per warp
  static constexpr bool kQInRegs = kQInRegs_;  // Q fragments kept in registers, else re-read with ldmatrix
  static constexpr int kWarps = 4;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kWarpRows = 16 * kMTiles;
  static constexpr int kBr = kWarpRows * kWarps;  // query rows per block
  static constexpr int kBc = kBc_;                // keys per tile
  static constexpr int kKSteps = kD / 16;         // 16-deep steps of Q K^T
  static constexpr int kSTiles = kBc / 8;         // 8-key column tiles of S
  static constexpr int kOTiles = kD / 8;          // 8-dim column tiles of O
  static constexpr std::size_t kSmemBytes = std::size_t(kBr + 4 * kBc) * kD * 2;  // Q + double-buffered K, V
  static_assert(kD % 64 == 0 && kBc % 16 == 0, "tile shapes");
};

// D = 64: 32 rows per warp halve the shared-memory traffic per MMA against
// 16 rows (each warp reads all of K and V per tile); o 64 + s 64 + q 32
// registers per thread: ptxas reports 254-255 registers, no spills, so two
// blocks (8 warps) per SM.
using Forward64 = ForwardTraits<64, 2, 64, true>;
// D = 128: at 32 rows per warp o alone is 128 registers and the kernel spills
// (also with Q re-read from shared memory and 32-key tiles); 16 rows per warp
// fit (~215 registers, no spills).
using Forward128 = ForwardTraits<128, 1, 64, true>;

template <class T, class Cfg>
__global__ void __launch_bounds__(Cfg::kThreads)
    forward_mma_kernel(AttentionForwardArgs a, std::int64_t num_q_tiles) {
  constexpr int kD = Cfg::kD, kMT = Cfg::kMTiles, kBr = Cfg::kBr, kBc = Cfg::kBc;
  constexpr int kThreads = Cfg::kThreads;
  using Ops = MmaOps<T>;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);
  T* sK = sQ + kBr * kD;      // buffers 0 and 1, kBc x kD each
  T* sV = sK + 2 * kBc * kD;  // likewise

  const TileIndex ti = tile_index(num_q_tiles, a.causal);
  const std::int64_t bh = ti.bh, b = bh / a.H, h = bh % a.H, i0 = ti.tile * kBr;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t4 = lane % 4;
  const int warp_row0 = warp * Cfg::kWarpRows;
  const std::int64_t warp_first = i0 + warp_row0, warp_last = warp_first + Cfg::kWarpRows - 1;
  const T* q = static_cast<const T*>(a.q) + bh * a.Nq * kD;
  const T* k = static_cast<const T*>(a.k) + bh * a.Nk * kD;
  const T* v = static_cast<const T*>(a.v) + bh * a.Nk * kD;
  const std::int64_t kend = key_end(a.causal, i0, kBr, a.Nq, a.Nk);
  const int num_k_tiles = static_cast<int>((kend + kBc - 1) / kBc);
  const float scale_log2 = a.scale * kLog2e;
  const bool has_mask = a.mask.kind != AttentionMaskKind::none;

  load_tile_async<kD, kBr, kThreads>(sQ, q, i0, a.Nq);
  load_tile_async<kD, kBc, kThreads>(sK, k, 0, a.Nk);
  load_tile_async<kD, kBc, kThreads>(sV, v, 0, a.Nk);
  cp_async_commit();

  std::uint32_t qf[Cfg::kQInRegs ? kMT : 1][Cfg::kQInRegs ? Cfg::kKSteps : 1][4];
  float o[kMT][Cfg::kOTiles][4];
  float m[kMT][2], l[kMT][2];  // per row half (g, g + 8); l is this thread's partial sum
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      m[mt][hh] = -INFINITY;
      l[mt][hh] = 0.f;
    }
#pragma unroll
    for (int nt = 0; nt < Cfg::kOTiles; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[mt][nt][e] = 0.f;
  }

  for (int t = 0; t < num_k_tiles; ++t) {
    const int buf = t & 1;
    cp_async_wait<0>();  // tile t (and at t = 0 the Q tile) has landed ...
    __syncthreads();     // ... for every thread, and everyone is done with tile t - 1's buffer
    if (t + 1 < num_k_tiles) {
      load_tile_async<kD, kBc, kThreads>(sK + (buf ^ 1) * kBc * kD, k, std::int64_t(t + 1) * kBc, a.Nk);
      load_tile_async<kD, kBc, kThreads>(sV + (buf ^ 1) * kBc * kD, v, std::int64_t(t + 1) * kBc, a.Nk);
      cp_async_commit();
    }
    if constexpr (Cfg::kQInRegs) {
      if (t == 0) {
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
          for (int kk = 0; kk < Cfg::kKSteps; ++kk)
            ldmatrix_x4(qf[mt][kk], sQ + swizzled<kD>(warp_row0 + mt * 16 + lane % 16, kk * 2 + lane / 16));
      }
    }
    const std::int64_t j0 = std::int64_t(t) * kBc;
    if (a.causal && j0 > warp_last) continue;  // every key of the tile is after this warp's rows
    const T* tK = sK + buf * kBc * kD;
    const T* tV = sV + buf * kBc * kD;

    // S = Q K^T
    float s[kMT][Cfg::kSTiles][4];
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int nt = 0; nt < Cfg::kSTiles; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[mt][nt][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < Cfg::kKSteps; ++kk) {
      std::uint32_t qa[kMT][4];
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
        if constexpr (Cfg::kQInRegs) {
#pragma unroll
          for (int e = 0; e < 4; ++e) qa[mt][e] = qf[mt][kk][e];
        } else {
          ldmatrix_x4(qa[mt], sQ + swizzled<kD>(warp_row0 + mt * 16 + lane % 16, kk * 2 + lane / 16));
        }
      }
#pragma unroll
      for (int np = 0; np < Cfg::kSTiles / 2; ++np) {
        // x4: keys np*16 + 0..7 / 8..15 at dims kk*16 + 0..7 / 8..15 -> B of S tiles 2np, 2np+1
        std::uint32_t kb[4];
        ldmatrix_x4(kb, tK + swizzled<kD>(np * 16 + (lane / 16) * 8 + lane % 8, kk * 2 + (lane / 8) % 2));
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) {
          Ops::mma(s[mt][2 * np], qa[mt], kb[0], kb[1]);
          Ops::mma(s[mt][2 * np + 1], qa[mt], kb[2], kb[3]);
        }
      }
    }

    // Scale to base-2 units and mask: past Nk, causal, explicit mask.
    const bool needs_mask = has_mask || j0 + kBc > a.Nk || (a.causal && j0 + kBc - 1 > warp_first);
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int nt = 0; nt < Cfg::kSTiles; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float x = s[mt][nt][e] * scale_log2;
          if (needs_mask) {
            const std::int64_t i = warp_first + mt * 16 + g + (e >> 1) * 8;
            const std::int64_t j = j0 + nt * 8 + 2 * t4 + (e & 1);
            if (j >= a.Nk || (a.causal && j > i))
              x = -INFINITY;
            else if (has_mask && i < a.Nq)
              x = apply_mask_log2(x, a.mask, mask_row_offset(a.mask, b, h, i), j);
          }
          s[mt][nt][e] = x;
        }

    // Online softmax; a row is spread over the 4 threads of a quad.
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        float mx = m[mt][hh];
#pragma unroll
        for (int nt = 0; nt < Cfg::kSTiles; ++nt) mx = fmaxf(mx, fmaxf(s[mt][nt][2 * hh], s[mt][nt][2 * hh + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        // Every key so far masked: m stays -inf and exponents are taken
        // against 0, giving 0 instead of NaN.
        const float m_use = mx == -INFINITY ? 0.f : mx;
        const float alpha = fast_exp2(m[mt][hh] - m_use);
        m[mt][hh] = mx;
        float sum = 0.f;
#pragma unroll
        for (int nt = 0; nt < Cfg::kSTiles; ++nt) {
          s[mt][nt][2 * hh] = fast_exp2(s[mt][nt][2 * hh] - m_use);
          s[mt][nt][2 * hh + 1] = fast_exp2(s[mt][nt][2 * hh + 1] - m_use);
          sum += s[mt][nt][2 * hh] + s[mt][nt][2 * hh + 1];
        }
        l[mt][hh] = l[mt][hh] * alpha + sum;
#pragma unroll
        for (int nt = 0; nt < Cfg::kOTiles; ++nt) {
          o[mt][nt][2 * hh] *= alpha;
          o[mt][nt][2 * hh + 1] *= alpha;
        }
      }

    // O += P V, P packed from the S accumulators.
#pragma unroll
    for (int kk = 0; kk < kBc / 16; ++kk) {
      std::uint32_t pa[kMT][4];
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
        pa[mt][0] = Ops::pack(s[mt][2 * kk][0], s[mt][2 * kk][1]);
        pa[mt][1] = Ops::pack(s[mt][2 * kk][2], s[mt][2 * kk][3]);
        pa[mt][2] = Ops::pack(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
        pa[mt][3] = Ops::pack(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
      }
#pragma unroll
      for (int dp = 0; dp < kD / 16; ++dp) {
        // x4.trans: keys kk*16 + 0..7 / 8..15 at dims dp*16 + 0..7 / 8..15 -> B of O tiles 2dp, 2dp+1
        std::uint32_t vb[4];
        ldmatrix_x4_trans(vb, tV + swizzled<kD>(kk * 16 + ((lane / 8) % 2) * 8 + lane % 8, dp * 2 + lane / 16));
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) {
          Ops::mma(o[mt][2 * dp], pa[mt], vb[0], vb[1]);
          Ops::mma(o[mt][2 * dp + 1], pa[mt], vb[2], vb[3]);
        }
      }
    }
  }

  T* out = static_cast<T*>(a.out) + bh * a.Nq * kD;
  float* lse = a.lse + bh * a.Nq;
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      float sum = l[mt][hh];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const std::int64_t i = warp_first + mt * 16 + g + hh * 8;
      if (i >= a.Nq) continue;
      const float inv = sum > 0.f ? 1.f / sum : 0.f;
#pragma unroll
      for (int nt = 0; nt < Cfg::kOTiles; ++nt)
        *reinterpret_cast<std::uint32_t*>(out + i * kD + nt * 8 + 2 * t4) =
            Ops::pack(o[mt][nt][2 * hh] * inv, o[mt][nt][2 * hh + 1] * inv);
      if (t4 == 0) lse[i] = sum > 0.f ? m[mt][hh] * kLn2 + logf(sum) : -INFINITY;
    }
}

template <class T, class Cfg>
cudaError_t launch_forward(const AttentionForwardArgs& a, cudaStream_t stream) {
  const std::int64_t tiles = (a.Nq + Cfg::kBr - 1) / Cfg::kBr;
  unsigned blocks = 0;
  if (cudaError_t e = grid_size(tiles * a.B * a.H, &blocks)) return e;
  auto kernel = forward_mma_kernel<T, Cfg>;
  if (cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(Cfg::kSmemBytes)))
    return e;
  kernel<<<blocks, Cfg::kThreads, Cfg::kSmemBytes, stream>>>(a, tiles);
  return cudaGetLastError();
}

template <class T>
cudaError_t forward_dispatch(const AttentionForwardArgs& a, cudaStream_t stream) {
  if (a.D == 64) return launch_forward<T, Forward64>(a, stream);
  if (a.D == 128) return launch_forward<T, Forward128>(a, stream);
  return cudaErrorNotSupported;
}

}  // namespace

cudaError_t forward_mma(const AttentionForwardArgs& a, AttentionDType dt, cudaStream_t stream) {
  switch (dt) {
    case AttentionDType::f16: return forward_dispatch<__half>(a, stream);
    case AttentionDType::bf16: return forward_dispatch<__nv_bfloat16>(a, stream);
    case AttentionDType::f32: break;
  }
  return cudaErrorNotSupported;
}

}  // namespace attn
}  // namespace cuda
}  // namespace pyfastnn
