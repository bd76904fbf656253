// Scaled dot-product attention on the CPU, FlashAttention's way: for each
// (batch, head, block of queries) the keys and values stream through in
// blocks with an online softmax, so no Nq x Nk matrix is ever stored; causal
// masking skips the key blocks wholly above the diagonal. The backward pass
// recomputes the probabilities from the saved log-sum-exp.
#pragma once
#include <cstdint>

namespace pyfastnn {
namespace cpu {

struct AttentionShape {
  std::int64_t B, H, Nq, Nk, D;
  double scale;
  bool causal;  // query i sees keys j <= i (top-left aligned, as PyTorch's is_causal)
};

// Optional mask, read as mask[b*s0 + h*s1 + i*s2 + j*s3] (zero strides
// broadcast): boolean (uint8, nonzero = keep) or additive (T).
struct AttentionMask {
  const void* data = nullptr;
  bool is_bool = false;
  std::int64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
};

// q (B,H,Nq,D), k/v (B,H,Nk,D), out (B,H,Nq,D), lse (B,H,Nq); contiguous.
// Rows whose keys are all masked out get out = 0 and lse = -inf.
template <class T>
void attention_forward(const AttentionShape& s, const T* q, const T* k, const T* v, const AttentionMask& mask, T* out,
                       T* lse);

template <class T>
void attention_backward(const AttentionShape& s, const T* q, const T* k, const T* v, const T* out, const T* lse,
                        const T* grad_out, const AttentionMask& mask, T* gq, T* gk, T* gv);

}  // namespace cpu
}  // namespace pyfastnn
