// Attention driver: tiles of Br queries x Bc keys; the tile products are
// single-threaded GEMMs, the softmax steps the row-wise kernels of the ISA
// level; (batch, head, query block) tasks are split over the pool.
#include "cpu/attention/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "cpu/gemm/gemm.h"
#include "cpu/rowwise/rowwise.h"
#include "runtime/dispatch.h"
#include "runtime/parallel.h"

namespace pyfastnn {
namespace cpu {

namespace {

// kBc is a multiple of every kernel set's nr (48, 16, 4; 24, 8 for double),
// so a key tile is a whole number of slivers of the once-packed K^T.
constexpr std::int64_t kBr = 64, kBc = 96;

template <class T>
GemmB<T> bmat(const T* data, std::ptrdiff_t rs, std::ptrdiff_t cs) {
  GemmB<T> b;
  b.matrix = StridedMatrix{data, rs, cs};
  return b;
}

// Scales the tile and applies causal and explicit masks (-inf where dropped).
template <class T>
void scale_and_mask(const AttentionShape& s, const AttentionMask& mask, std::int64_t b, std::int64_t h,
                    std::int64_t i0, std::int64_t br, std::int64_t j0, std::int64_t bc, T* S, std::int64_t ld) {
  const T neg_inf = -std::numeric_limits<T>::infinity();
  const T sc = static_cast<T>(s.scale);
  for (std::int64_t r = 0; r < br; ++r) {
    T* row = S + r * ld;
    const std::int64_t i = i0 + r;
    for (std::int64_t c = 0; c < bc; ++c) row[c] *= sc;
    if (s.causal)
      for (std::int64_t c = std::max<std::int64_t>(0, i + 1 - j0); c < bc; ++c) row[c] = neg_inf;
    if (mask.data) {
      const std::int64_t base = b * mask.s0 + h * mask.s1 + i * mask.s2 + j0 * mask.s3;
      if (mask.is_bool) {
        const std::uint8_t* m = static_cast<const std::uint8_t*>(mask.data) + base;
        for (std::int64_t c = 0; c < bc; ++c)
          if (!m[c * mask.s3]) row[c] = neg_inf;
      } else {
        const T* m = static_cast<const T*>(mask.data) + base;
        for (std::int64_t c = 0; c < bc; ++c) row[c] += m[c * mask.s3];
      }
    }
  }
}

// Key blocks a query block can see: all, or up to the causal diagonal.
inline std::int64_t key_end(const AttentionShape& s, std::int64_t i_last) {
  return s.causal ? std::clamp<std::int64_t>(i_last + 1, 0, s.Nk) : s.Nk;
}

}  // namespace

template <class T>
void attention_forward(const AttentionShape& s, const T* q, const RowLayout& q_at, const T* k, const RowLayout& k_at,
                       const T* v, const RowLayout& v_at, const AttentionMask& mask, T* out, T* lse) {
  const auto& rk = rowwise_kernels<T>(active_isa());
  // One (batch, head) per task: its K^T and V tiles are packed once and
  // reused by every query block.
  parallel_for(s.B * s.H, 1, [&](std::int64_t t0, std::int64_t t1) {
    std::vector<T> S(kBr * kBc), acc(static_cast<std::size_t>(kBr * s.D)), m(kBr), l(kBr), alpha(kBr);
    for (std::int64_t bh = t0; bh < t1; ++bh) {
      const std::int64_t b = bh / s.H, h = bh % s.H;
      const T* kh = k + b * k_at.b + h * k_at.h;
      const T* vh = v + b * v_at.b + h * v_at.h;
      const PrepackedB<T> kt = gemm_prepack_b<T>(s.D, s.Nk, StridedMatrix{kh, 1, k_at.n});  // K^T (D x Nk)
      std::vector<PrepackedB<T>> vtiles;
      for (std::int64_t j0 = 0; j0 < s.Nk; j0 += kBc)
        vtiles.push_back(
            gemm_prepack_b<T>(std::min(kBc, s.Nk - j0), s.D, StridedMatrix{vh + j0 * v_at.n, v_at.n, 1}));
      const bool kt_tiles_ok = s.D <= kt.kc;  // one k block: a key tile is a slice of kt's slivers
      for (std::int64_t i0 = 0; i0 < s.Nq; i0 += kBr) {
        const std::int64_t br = std::min(kBr, s.Nq - i0);
        const T* qb = q + b * q_at.b + h * q_at.h + i0 * q_at.n;
        std::fill(m.begin(), m.end(), -std::numeric_limits<T>::infinity());
        std::fill(l.begin(), l.end(), T(0));
        std::fill(acc.begin(), acc.end(), T(0));
        const std::int64_t jend = key_end(s, i0 + br - 1);
        for (std::int64_t j0 = 0; j0 < jend; j0 += kBc) {
          const std::int64_t bc = std::min(kBc, jend - j0);
          // S = q_blk . k_blk^T
          if (kt_tiles_ok) {
            GemmB<T> kb;  // columns j0 .. j0+bc of the packed K^T, read in place
            kb.prepacked = &kt;
            kb.prepacked_col0 = j0;
            gemm_ex<T>(br, bc, s.D, StridedMatrix{qb, q_at.n, 1}, kb, S.data(), kBc, GemmEpilogue<T>{}, 1);
          } else {
            gemm_ex<T>(br, bc, s.D, StridedMatrix{qb, q_at.n, 1}, bmat(kh + j0 * k_at.n, 1, k_at.n), S.data(), kBc,
                       GemmEpilogue<T>{}, 1);
          }
          scale_and_mask(s, mask, b, h, i0, br, j0, bc, S.data(), kBc);
          rk.online_softmax(S.data(), kBc, br, bc, m.data(), l.data(), alpha.data());
          for (std::int64_t r = 0; r < br; ++r)
            if (alpha[r] != T(1))
              for (std::int64_t d = 0; d < s.D; ++d) acc[r * s.D + d] *= alpha[r];
          GemmB<T> vb;
          vb.prepacked = &vtiles[static_cast<std::size_t>(j0 / kBc)];
          GemmEpilogue<T> accumulate;
          accumulate.accumulate = true;  // acc += P . v_blk
          if (bc == vb.prepacked->K) {
            gemm_ex<T>(br, s.D, bc, StridedMatrix{S.data(), kBc, 1}, vb, acc.data(), s.D, accumulate, 1);
          } else {  // causal cut inside the last tile: fewer keys than the packed tile
            gemm_ex<T>(br, s.D, bc, StridedMatrix{S.data(), kBc, 1}, bmat(vh + j0 * v_at.n, v_at.n, 1), acc.data(),
                       s.D, accumulate, 1);
          }
        }
        T* ob = out + (bh * s.Nq + i0) * s.D;
        T* lb = lse + bh * s.Nq + i0;
        for (std::int64_t r = 0; r < br; ++r) {
          const bool empty = l[r] == T(0);
          const T inv = empty ? T(0) : T(1) / l[r];
          for (std::int64_t d = 0; d < s.D; ++d) ob[r * s.D + d] = acc[r * s.D + d] * inv;
          lb[r] = empty ? -std::numeric_limits<T>::infinity()
                        : m[r] + static_cast<T>(std::log(static_cast<double>(l[r])));
        }
      }
    }
  });
}

template <class T>
void attention_backward(const AttentionShape& s, const T* q, const T* k, const T* v, const T* out, const T* lse,
                        const T* grad_out, const AttentionMask& mask, T* gq, T* gk, T* gv) {
  const auto& rk = rowwise_kernels<T>(active_isa());
  // One (batch, head) per task: its key/value gradients gather contributions
  // from every query block, so they stay with one thread (no atomics).
  parallel_for(s.B * s.H, 1, [&](std::int64_t t0, std::int64_t t1) {
    std::vector<T> P(kBr * kBc), dP(kBr * kBc), Di(static_cast<std::size_t>(s.Nq));
    for (std::int64_t bh = t0; bh < t1; ++bh) {
      const std::int64_t b = bh / s.H, h = bh % s.H;
      const T *qh = q + bh * s.Nq * s.D, *kh = k + bh * s.Nk * s.D, *vh = v + bh * s.Nk * s.D;
      const T *oh = out + bh * s.Nq * s.D, *dOh = grad_out + bh * s.Nq * s.D, *lh = lse + bh * s.Nq;
      T *gqh = gq + bh * s.Nq * s.D, *gkh = gk + bh * s.Nk * s.D, *gvh = gv + bh * s.Nk * s.D;
      std::fill(gqh, gqh + s.Nq * s.D, T(0));
      std::fill(gkh, gkh + s.Nk * s.D, T(0));
      std::fill(gvh, gvh + s.Nk * s.D, T(0));
      for (std::int64_t i = 0; i < s.Nq; ++i) {  // D_i = rowsum(dO * O)
        double d = 0;
        for (std::int64_t c = 0; c < s.D; ++c) d += static_cast<double>(dOh[i * s.D + c]) * oh[i * s.D + c];
        Di[static_cast<std::size_t>(i)] = static_cast<T>(d);
      }
      GemmEpilogue<T> acc;
      acc.accumulate = true;
      const T sc = static_cast<T>(s.scale);
      for (std::int64_t i0 = 0; i0 < s.Nq; i0 += kBr) {
        const std::int64_t br = std::min(kBr, s.Nq - i0), jend = key_end(s, i0 + br - 1);
        for (std::int64_t j0 = 0; j0 < jend; j0 += kBc) {
          const std::int64_t bc = std::min(kBc, jend - j0);
          gemm_ex<T>(br, bc, s.D, StridedMatrix{qh + i0 * s.D, s.D, 1}, bmat(kh + j0 * s.D, 1, s.D), P.data(), kBc,
                     GemmEpilogue<T>{}, 1);
          scale_and_mask(s, mask, b, h, i0, br, j0, bc, P.data(), kBc);
          rk.exp_minus(P.data(), kBc, br, bc, lh + i0);
          // gv_blk += P^T . dO_blk
          gemm_ex<T>(bc, s.D, br, StridedMatrix{P.data(), 1, kBc}, bmat(dOh + i0 * s.D, s.D, 1), gvh + j0 * s.D, s.D,
                     acc, 1);
          // dP = dO_blk . v_blk^T ;  dS = P * (dP - D_i) * scale
          gemm_ex<T>(br, bc, s.D, StridedMatrix{dOh + i0 * s.D, s.D, 1}, bmat(vh + j0 * s.D, 1, s.D), dP.data(), kBc,
                     GemmEpilogue<T>{}, 1);
          for (std::int64_t r = 0; r < br; ++r)
            for (std::int64_t c = 0; c < bc; ++c)
              dP[r * kBc + c] = P[r * kBc + c] * (dP[r * kBc + c] - Di[static_cast<std::size_t>(i0 + r)]) * sc;
          // gq_blk += dS . k_blk ;  gk_blk += dS^T . q_blk
          gemm_ex<T>(br, s.D, bc, StridedMatrix{dP.data(), kBc, 1}, bmat(kh + j0 * s.D, s.D, 1), gqh + i0 * s.D, s.D,
                     acc, 1);
          gemm_ex<T>(bc, s.D, br, StridedMatrix{dP.data(), 1, kBc}, bmat(qh + i0 * s.D, s.D, 1), gkh + j0 * s.D, s.D,
                     acc, 1);
        }
      }
    }
  });
}

template void attention_forward<float>(const AttentionShape&, const float*, const RowLayout&, const float*,
                                       const RowLayout&, const float*, const RowLayout&, const AttentionMask&, float*,
                                       float*);
template void attention_forward<double>(const AttentionShape&, const double*, const RowLayout&, const double*,
                                        const RowLayout&, const double*, const RowLayout&, const AttentionMask&,
                                        double*, double*);
template void attention_backward<float>(const AttentionShape&, const float*, const float*, const float*, const float*,
                                        const float*, const float*, const AttentionMask&, float*, float*, float*);
template void attention_backward<double>(const AttentionShape&, const double*, const double*, const double*,
                                         const double*, const double*, const double*, const AttentionMask&, double*,
                                         double*, double*);

}  // namespace cpu
}  // namespace pyfastnn
