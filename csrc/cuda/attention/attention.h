// Scaled dot-product attention on the GPU, FlashAttention-2's way: one thread
// block per (query tile, batch*head) streams the key/value tiles through shared
// memory with an online softmax, so no Nq x Nk matrix is ever stored. The
// backward pass recomputes the probabilities from the saved log-sum-exp.
//
// Semantics are those of the CPU kernels (csrc/cpu/attention/attention.h):
//   out = softmax(q k^T * scale + mask) v, lse = log-sum-exp of each row
//   (natural log), causal: query i sees keys j <= i (top-left aligned, also
//   when Nq != Nk); a row whose keys are all masked gets out = 0, lse = -inf,
//   and zero gradients.
//
// Implementations (AttentionImpl):
//   reference  one thread per output row, plain loops (any D); for tests.
//   simt       fp32 FMA tiles in shared memory, 64x64 tiles, D <= 128; any
//              input dtype (half types are widened on load).
//   mma        tensor cores (mma.sync m16n8k16, ldmatrix, cp.async), fp16/bf16,
//              D in {64, 128}; forward and backward.
//   automatic  mma where it applies, else simt where it applies, else reference.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace pyfastnn {
namespace cuda {

enum class AttentionDType : int { f32 = 0, f16 = 1, bf16 = 2 };
enum class AttentionImpl : int { automatic = 0, reference = 1, simt = 2, mma = 3 };
enum class AttentionMaskKind : int { none = 0, boolean = 1, additive = 2 };

// Optional mask, element (b, h, i, j) read at data[b*s0 + h*s1 + i*s2 + j*s3]
// (strides in elements, zero strides broadcast, negative ones allowed):
// boolean = uint8 (nonzero = keep), additive = float32 added to the scaled
// scores.
struct AttentionMask {
  const void* data = nullptr;
  AttentionMaskKind kind = AttentionMaskKind::none;
  std::int64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
};

// q (B,H,Nq,D), k/v (B,H,Nk,D), out (B,H,Nq,D) in the element type; lse
// (B,H,Nq) float32. All contiguous.
struct AttentionForwardArgs {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;
  float* lse = nullptr;
  std::int64_t B = 0, H = 0, Nq = 0, Nk = 0, D = 0;
  float scale = 1.f;
  bool causal = false;
  AttentionMask mask;
};

// grad_out/out like q; lse float32 from the forward pass; delta is a float32
// (B,H,Nq) workspace (rowsum(grad_out * out)); grads in the element type.
struct AttentionBackwardArgs {
  const void* grad_out = nullptr;
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  const void* out = nullptr;
  const float* lse = nullptr;
  float* delta = nullptr;
  void* grad_q = nullptr;
  void* grad_k = nullptr;
  void* grad_v = nullptr;
  std::int64_t B = 0, H = 0, Nq = 0, Nk = 0, D = 0;
  float scale = 1.f;
  bool causal = false;
  AttentionMask mask;
};

// Whether an implementation handles this head size and dtype (reference and
// automatic: always).
bool attention_impl_supports(AttentionImpl impl, AttentionDType dtype, std::int64_t D, bool backward);

// The caller has checked shapes and guaranteed B*H*Nq > 0, Nk > 0 (the Python
// layer answers the empty cases without a launch). Returns the launch status;
// cudaErrorNotSupported when `impl` cannot take this D/dtype.
cudaError_t attention_forward(const AttentionForwardArgs& args, AttentionDType dtype, AttentionImpl impl,
                              cudaStream_t stream);
cudaError_t attention_backward(const AttentionBackwardArgs& args, AttentionDType dtype, AttentionImpl impl,
                               cudaStream_t stream);

}  // namespace cuda
}  // namespace pyfastnn
