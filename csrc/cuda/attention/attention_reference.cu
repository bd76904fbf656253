// Reference attention kernels: one thread per output row, plain loops, natural
// exp, any head size. Nothing N x N is stored: scores are recomputed where
// needed. They are slow (no tiling, uncoalesced reads, scores recomputed per
// output chunk) and exist so the tiled kernels have a GPU twin to be compared
// with; they are also the fallback for head sizes the tiled kernels do not
// take (D = 0, D > 128).
#include "cuda/attention/attention_common.cuh"

namespace pyfastnn {
namespace cuda {
namespace attn {

namespace {

constexpr int kThreads = 128;
constexpr int kChunk = 32;  // output dims accumulated in registers per pass

// Score of query row `qrow` against key `j`, scaled and masked (natural units;
// -inf where the key is dropped).
template <class T>
__device__ float reference_score(const T* qrow, const T* krow, std::int64_t D, float scale, bool causal,
                                 std::int64_t i, std::int64_t j, const AttentionMask& mask, std::int64_t mask_row) {
  if (causal && j > i) return -INFINITY;
  float dot = 0.f;
  for (std::int64_t d = 0; d < D; ++d) dot = fmaf(to_float(qrow[d]), to_float(krow[d]), dot);
  float x = dot * scale;
  if (mask.kind == AttentionMaskKind::boolean) {
    if (!static_cast<const std::uint8_t*>(mask.data)[mask_row + j * mask.s3]) x = -INFINITY;
  } else if (mask.kind == AttentionMaskKind::additive) {
    x += static_cast<const float*>(mask.data)[mask_row + j * mask.s3];
  }
  return x;
}

template <class T>
__device__ float dot_row(const T* a, const T* b, std::int64_t D) {
  float s = 0.f;
  for (std::int64_t d = 0; d < D; ++d) s = fmaf(to_float(a[d]), to_float(b[d]), s);
  return s;
}

template <class T>
__global__ void forward_reference_kernel(AttentionForwardArgs a) {
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row >= a.B * a.H * a.Nq) return;
  const std::int64_t bh = row / a.Nq, i = row % a.Nq, b = bh / a.H, h = bh % a.H, D = a.D;
  const T* q = static_cast<const T*>(a.q) + row * D;
  const T* k = static_cast<const T*>(a.k) + bh * a.Nk * D;
  const T* v = static_cast<const T*>(a.v) + bh * a.Nk * D;
  T* out = static_cast<T*>(a.out) + row * D;
  const std::int64_t mrow = a.mask.kind == AttentionMaskKind::none ? 0 : mask_row_offset(a.mask, b, h, i);

  float m = -INFINITY;
  for (std::int64_t j = 0; j < a.Nk; ++j)
    m = fmaxf(m, reference_score(q, k + j * D, D, a.scale, a.causal, i, j, a.mask, mrow));
  if (m == -INFINITY) {  // every key masked
    for (std::int64_t d = 0; d < D; ++d) out[d] = from_float<T>(0.f);
    a.lse[row] = -INFINITY;
    return;
  }
  double l = 0.0;
  for (std::int64_t j = 0; j < a.Nk; ++j)
    l += exp(static_cast<double>(reference_score(q, k + j * D, D, a.scale, a.causal, i, j, a.mask, mrow) - m));
  const float lse = m + static_cast<float>(log(l));
  a.lse[row] = lse;
  for (std::int64_t d0 = 0; d0 < D; d0 += kChunk) {
    float acc[kChunk];
#pragma unroll
    for (int c = 0; c < kChunk; ++c) acc[c] = 0.f;
    for (std::int64_t j = 0; j < a.Nk; ++j) {
      const float p = expf(reference_score(q, k + j * D, D, a.scale, a.causal, i, j, a.mask, mrow) - lse);
      if (p == 0.f) continue;
#pragma unroll
      for (int c = 0; c < kChunk; ++c)
        if (d0 + c < D) acc[c] = fmaf(p, to_float(v[j * D + d0 + c]), acc[c]);
    }
#pragma unroll
    for (int c = 0; c < kChunk; ++c)
      if (d0 + c < D) out[d0 + c] = from_float<T>(acc[c]);
  }
}

// grad_q row i: scale * sum_j P_ij (dP_ij - delta_i) k_j, dP_ij = dO_i . v_j.
template <class T>
__global__ void backward_dq_reference_kernel(AttentionBackwardArgs a) {
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row >= a.B * a.H * a.Nq) return;
  const std::int64_t bh = row / a.Nq, i = row % a.Nq, b = bh / a.H, h = bh % a.H, D = a.D;
  const T* q = static_cast<const T*>(a.q) + row * D;
  const T* dO = static_cast<const T*>(a.grad_out) + row * D;
  const T* k = static_cast<const T*>(a.k) + bh * a.Nk * D;
  const T* v = static_cast<const T*>(a.v) + bh * a.Nk * D;
  T* dq = static_cast<T*>(a.grad_q) + row * D;
  const std::int64_t mrow = a.mask.kind == AttentionMaskKind::none ? 0 : mask_row_offset(a.mask, b, h, i);
  const float lse = a.lse[row], delta = a.delta[row];
  for (std::int64_t d0 = 0; d0 < D; d0 += kChunk) {
    float acc[kChunk];
#pragma unroll
    for (int c = 0; c < kChunk; ++c) acc[c] = 0.f;
    if (lse != -INFINITY) {
      for (std::int64_t j = 0; j < a.Nk; ++j) {
        const float x = reference_score(q, k + j * D, D, a.scale, a.causal, i, j, a.mask, mrow);
        if (x == -INFINITY) continue;
        const float p = expf(x - lse);
        const float ds = p * (dot_row(dO, v + j * D, D) - delta) * a.scale;
#pragma unroll
        for (int c = 0; c < kChunk; ++c)
          if (d0 + c < D) acc[c] = fmaf(ds, to_float(k[j * D + d0 + c]), acc[c]);
      }
    }
#pragma unroll
    for (int c = 0; c < kChunk; ++c)
      if (d0 + c < D) dq[d0 + c] = from_float<T>(acc[c]);
  }
}

// grad_v row j: sum_i P_ij dO_i;  grad_k row j: scale * sum_i P_ij (dP_ij - delta_i) q_i.
template <class T>
__global__ void backward_dkdv_reference_kernel(AttentionBackwardArgs a) {
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row >= a.B * a.H * a.Nk) return;
  const std::int64_t bh = row / a.Nk, j = row % a.Nk, b = bh / a.H, h = bh % a.H, D = a.D;
  const T* qh = static_cast<const T*>(a.q) + bh * a.Nq * D;
  const T* dOh = static_cast<const T*>(a.grad_out) + bh * a.Nq * D;
  const T* k = static_cast<const T*>(a.k) + row * D;
  const T* v = static_cast<const T*>(a.v) + row * D;
  const float* lse = a.lse + bh * a.Nq;
  const float* delta = a.delta + bh * a.Nq;
  T* dk = static_cast<T*>(a.grad_k) + row * D;
  T* dv = static_cast<T*>(a.grad_v) + row * D;
  for (std::int64_t d0 = 0; d0 < D; d0 += kChunk) {
    float acc_k[kChunk], acc_v[kChunk];
#pragma unroll
    for (int c = 0; c < kChunk; ++c) acc_k[c] = acc_v[c] = 0.f;
    for (std::int64_t i = 0; i < a.Nq; ++i) {
      if (lse[i] == -INFINITY) continue;
      const std::int64_t mrow = a.mask.kind == AttentionMaskKind::none ? 0 : mask_row_offset(a.mask, b, h, i);
      const float x = reference_score(qh + i * D, k, D, a.scale, a.causal, i, j, a.mask, mrow);
      if (x == -INFINITY) continue;
      const float p = expf(x - lse[i]);
      const float ds = p * (dot_row(dOh + i * D, v, D) - delta[i]) * a.scale;
#pragma unroll
      for (int c = 0; c < kChunk; ++c)
        if (d0 + c < D) {
          acc_v[c] = fmaf(p, to_float(dOh[i * D + d0 + c]), acc_v[c]);
          acc_k[c] = fmaf(ds, to_float(qh[i * D + d0 + c]), acc_k[c]);
        }
    }
#pragma unroll
    for (int c = 0; c < kChunk; ++c)
      if (d0 + c < D) {
        dk[d0 + c] = from_float<T>(acc_k[c]);
        dv[d0 + c] = from_float<T>(acc_v[c]);
      }
  }
}

// One warp per row: lanes stride over D, then a butterfly sum.
template <class T>
__global__ void delta_kernel(const T* __restrict__ grad_out, const T* __restrict__ out, float* __restrict__ delta,
                             std::int64_t rows, std::int64_t D) {
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= rows) return;
  const int lane = threadIdx.x % 32;
  float s = 0.f;
  for (std::int64_t d = lane; d < D; d += 32) s = fmaf(to_float(grad_out[row * D + d]), to_float(out[row * D + d]), s);
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
  if (lane == 0) delta[row] = s;
}

template <class T>
cudaError_t launch_forward(const AttentionForwardArgs& a, cudaStream_t stream) {
  unsigned blocks = 0;
  if (cudaError_t e = grid_size((a.B * a.H * a.Nq + kThreads - 1) / kThreads, &blocks)) return e;
  forward_reference_kernel<T><<<blocks, kThreads, 0, stream>>>(a);
  return cudaGetLastError();
}

template <class T>
cudaError_t launch_backward(const AttentionBackwardArgs& a, cudaStream_t stream) {
  unsigned dq_blocks = 0, dkv_blocks = 0;
  if (cudaError_t e = grid_size((a.B * a.H * a.Nq + kThreads - 1) / kThreads, &dq_blocks)) return e;
  if (cudaError_t e = grid_size((a.B * a.H * a.Nk + kThreads - 1) / kThreads, &dkv_blocks)) return e;
  backward_dq_reference_kernel<T><<<dq_blocks, kThreads, 0, stream>>>(a);
  if (cudaError_t e = cudaGetLastError()) return e;
  backward_dkdv_reference_kernel<T><<<dkv_blocks, kThreads, 0, stream>>>(a);
  return cudaGetLastError();
}

template <class T>
cudaError_t launch_delta(const AttentionBackwardArgs& a, cudaStream_t stream) {
  constexpr int kRowsPerBlock = 8;
  const std::int64_t rows = a.B * a.H * a.Nq;
  unsigned blocks = 0;
  if (cudaError_t e = grid_size((rows + kRowsPerBlock - 1) / kRowsPerBlock, &blocks)) return e;
  delta_kernel<T><<<blocks, kRowsPerBlock * 32, 0, stream>>>(static_cast<const T*>(a.grad_out),
                                                             static_cast<const T*>(a.out), a.delta, rows, a.D);
  return cudaGetLastError();
}

}  // namespace

cudaError_t forward_reference(const AttentionForwardArgs& a, AttentionDType dt, cudaStream_t stream) {
  switch (dt) {
    case AttentionDType::f32: return launch_forward<float>(a, stream);
    case AttentionDType::f16: return launch_forward<__half>(a, stream);
    case AttentionDType::bf16: return launch_forward<__nv_bfloat16>(a, stream);
  }
  return cudaErrorNotSupported;
}

cudaError_t backward_reference(const AttentionBackwardArgs& a, AttentionDType dt, cudaStream_t stream) {
  switch (dt) {
    case AttentionDType::f32: return launch_backward<float>(a, stream);
    case AttentionDType::f16: return launch_backward<__half>(a, stream);
    case AttentionDType::bf16: return launch_backward<__nv_bfloat16>(a, stream);
  }
  return cudaErrorNotSupported;
}

cudaError_t backward_delta(const AttentionBackwardArgs& a, AttentionDType dt, cudaStream_t stream) {
  switch (dt) {
    case AttentionDType::f32: return launch_delta<float>(a, stream);
    case AttentionDType::f16: return launch_delta<__half>(a, stream);
    case AttentionDType::bf16: return launch_delta<__nv_bfloat16>(a, stream);
  }
  return cudaErrorNotSupported;
}

}  // namespace attn
}  // namespace cuda
}  // namespace pyfastnn
