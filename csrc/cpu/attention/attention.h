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

// Where the rows of a (B, H, N, D) operand lie: element strides between
// batches, heads and rows; each row's D elements are contiguous. A view —
// the filled part of a key/value cache, heads split out of a (B, N, H*D)
// projection — is read in place.
struct RowLayout {
  std::int64_t b = 0, h = 0, n = 0;
  static RowLayout contiguous(std::int64_t H, std::int64_t N, std::int64_t D) { return {H * N * D, N * D, D}; }
};

// q (B,H,Nq,D), k/v (B,H,Nk,D) laid out as q_at/k_at/v_at say; out
// (B,H,Nq,D) and lse (B,H,Nq) contiguous. Rows whose keys are all masked out
// get out = 0 and lse = -inf.
template <class T>
void attention_forward(const AttentionShape& s, const T* q, const RowLayout& q_at, const T* k, const RowLayout& k_at,
                       const T* v, const RowLayout& v_at, const AttentionMask& mask, T* out, T* lse);

// Every operand contiguous.
template <class T>
void attention_backward(const AttentionShape& s, const T* q, const T* k, const T* v, const T* out, const T* lse,
                        const T* grad_out, const AttentionMask& mask, T* gq, T* gk, T* gv);

}  // namespace cpu
}  // namespace pyfastnn
