// Pieces shared by the attention kernels: element conversions, the mask, and
// the launchers each implementation file provides to attention.cu.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "cuda/attention/attention.h"

namespace pyfastnn {
namespace cuda {
namespace attn {

// The softmax runs in base 2 (exp2 is one instruction): x2 = x * log2(e).
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <class T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

// Offset of mask row (b, h, i); element j is at row_offset + j * s3.
__device__ __forceinline__ std::int64_t mask_row_offset(const AttentionMask& m, std::int64_t b, std::int64_t h,
                                                        std::int64_t i) {
  return b * m.s0 + h * m.s1 + i * m.s2;
}

// Applies the explicit mask to a score already in base-2 units: -inf where a
// boolean mask drops the key, + additive * log2(e) otherwise.
__device__ __forceinline__ float apply_mask_log2(float x2, const AttentionMask& m, std::int64_t row_offset,
                                                 std::int64_t j) {
  if (m.kind == AttentionMaskKind::boolean)
    return static_cast<const std::uint8_t*>(m.data)[row_offset + j * m.s3] ? x2 : -INFINITY;
  if (m.kind == AttentionMaskKind::additive)
    return fmaf(static_cast<const float*>(m.data)[row_offset + j * m.s3], kLog2e, x2);
  return x2;
}

// Keys a query tile [i0, i0 + rows) can see: all, or up to the causal diagonal
// of its last valid row.
__host__ __device__ __forceinline__ std::int64_t key_end(bool causal, std::int64_t i0, std::int64_t rows,
                                                         std::int64_t Nq, std::int64_t Nk) {
  if (!causal) return Nk;
  const std::int64_t last = (i0 + rows < Nq ? i0 + rows : Nq);  // last valid row + 1
  return last < Nk ? last : Nk;
}

// Grid of one block per (query or key tile, batch*head), tiles fastest so
// that blocks running together share one head's K/V (or Q/dO) in L2. Causal
// forward grids start with the last (longest) query tiles.
struct TileIndex {
  std::int64_t tile, bh;
};
__device__ __forceinline__ TileIndex tile_index(std::int64_t num_tiles, bool longest_first) {
  const std::int64_t linear = blockIdx.x;
  TileIndex t{linear % num_tiles, linear / num_tiles};
  if (longest_first) t.tile = num_tiles - 1 - t.tile;
  return t;
}

inline cudaError_t grid_size(std::int64_t blocks, unsigned* out) {
  if (blocks <= 0 || blocks > 0x7fffffffLL) return cudaErrorInvalidConfiguration;
  *out = static_cast<unsigned>(blocks);
  return cudaSuccess;
}

// Launchers, one family per file.
cudaError_t forward_reference(const AttentionForwardArgs& a, AttentionDType dt, cudaStream_t stream);
cudaError_t backward_reference(const AttentionBackwardArgs& a, AttentionDType dt, cudaStream_t stream);
cudaError_t forward_simt(const AttentionForwardArgs& a, AttentionDType dt, cudaStream_t stream);
cudaError_t backward_simt(const AttentionBackwardArgs& a, AttentionDType dt, cudaStream_t stream);
cudaError_t forward_mma(const AttentionForwardArgs& a, AttentionDType dt, cudaStream_t stream);
cudaError_t backward_mma(const AttentionBackwardArgs& a, AttentionDType dt, cudaStream_t stream);
// delta[row] = sum_d grad_out[row, d] * out[row, d] over B*H*Nq rows.
cudaError_t backward_delta(const AttentionBackwardArgs& a, AttentionDType dt, cudaStream_t stream);

constexpr int kSimtMaxD = 128;
// Dynamic shared memory the simt kernels of this head size ask for (the
// largest of the forward, or of the two backward kernels). D = 128 needs
// 113 KB forward and 162 KB backward: more than the 99 KB opt-in limit of
// sm_86 / sm_89 parts, where 'automatic' then takes the reference kernels.
std::size_t simt_smem_bytes(std::int64_t D, bool backward);

}  // namespace attn
}  // namespace cuda
}  // namespace pyfastnn
