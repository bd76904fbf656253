// LSTM sequence driver: GEMMs from cpu/gemm, cell kernels per ISA level,
// batch rows of each cell update split over the pool.
#include "cpu/lstm/lstm.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu/gemm/gemm.h"
#include "runtime/dispatch.h"
#include "runtime/isa_table.h"
#include "runtime/parallel.h"

namespace pyfastnn {
namespace cpu {

namespace {
const IsaTable<LstmKernels>& table() {
  static const IsaTable<LstmKernels> t(&lstm_kernels_scalar, &lstm_kernels_avx2, &lstm_kernels_avx512);
  return t;
}

// Batch rows per thread in the time loops: enough that a step's GEMM is worth
// a thread (small batches run on one).
std::int64_t rows_per_thread(const LstmShape& s) {
  const std::int64_t by_work = (1 << 20) / std::max<std::int64_t>(1, 8 * s.H * s.H);
  return std::max<std::int64_t>(8, by_work);
}

template <class T>
GemmB<T> matrix(const T* data, std::ptrdiff_t rs, std::ptrdiff_t cs) {
  GemmB<T> b;
  b.matrix = StridedMatrix{data, rs, cs};
  return b;
}
}  // namespace

template <>
const LstmKernels<float>& lstm_kernels<float>(CpuIsa isa) { return table().get<float>(isa); }
template <>
const LstmKernels<double>& lstm_kernels<double>(CpuIsa isa) { return table().get<double>(isa); }

template <class T>
void lstm_forward(const LstmShape& s, const T* x, const T* w_ih, const T* w_hh, const T* bias, T* hs, T* cs,
                  T* gates) {
  const std::int64_t G = 4 * s.H, BH = s.B * s.H;
  const auto& k = lstm_kernels<T>(active_isa());
  // Input projection of every step at once: gates (T*B, 4H) = x . w_ih^T + bias.
  GemmEpilogue<T> ep;
  ep.bias = bias;
  gemm_ex<T>(s.T * s.B, G, s.I, StridedMatrix{x, s.I, 1}, matrix(w_ih, 1, s.I), gates, G, ep, 0);
  // w_hh^T is the B operand of every step: pack it once.
  const PrepackedB<T> whh_t = gemm_prepack_b<T>(s.H, G, StridedMatrix{w_hh, 1, s.H});
  GemmB<T> whh_b;
  whh_b.prepacked = &whh_t;
  // Batch rows never interact: row r of h_t needs only row r of h_{t-1}. So
  // each thread runs the whole sequence for its rows, with no synchronisation
  // per step.
  parallel_for(s.B, rows_per_thread(s), [&](std::int64_t r0, std::int64_t r1) {
    const std::int64_t rows = r1 - r0;
    GemmEpilogue<T> acc;
    acc.accumulate = true;  // gates[t] += h_{t-1} . w_hh^T
    for (std::int64_t t = 0; t < s.T; ++t) {
      T* gt = gates + (t * s.B + r0) * G;
      gemm_ex<T>(rows, G, s.H, StridedMatrix{hs + t * BH + r0 * s.H, s.H, 1}, whh_b, gt, G, acc, 1);
      const std::int64_t st0 = t * BH + r0 * s.H, st1 = (t + 1) * BH + r0 * s.H;
      k.cell_forward(gt, cs + st0, cs + st1, hs + st1, rows, s.H);
    }
  });
}

template <class T>
void lstm_backward(const LstmShape& s, const T* grad_y, T* dh, T* dc, const T* x, const T* hs, const T* cs,
                   const T* gates, const T* w_ih, const T* w_hh, T* gx, T* gw_ih, T* gw_hh, T* gb) {
  const std::int64_t G = 4 * s.H, BH = s.B * s.H;
  const auto& k = lstm_kernels<T>(active_isa());
  std::vector<T> dG(static_cast<std::size_t>(s.T * s.B * G));
  const PrepackedB<T> whh = gemm_prepack_b<T>(G, s.H, StridedMatrix{w_hh, s.H, 1});  // B of every step
  GemmB<T> whh_b;
  whh_b.prepacked = &whh;
  // As in the forward pass, batch rows are independent through time.
  parallel_for(s.B, rows_per_thread(s), [&](std::int64_t r0, std::int64_t r1) {
    const std::int64_t rows = r1 - r0;
    std::vector<T> dh_step(static_cast<std::size_t>(rows * s.H));
    for (std::int64_t t = s.T - 1; t >= 0; --t) {
      // dh for step t: the carried recurrent part plus grad_y[t].
      T* dh_rows = dh + r0 * s.H;
      std::memcpy(dh_step.data(), dh_rows, sizeof(T) * static_cast<std::size_t>(rows * s.H));
      if (grad_y) {
        const T* gy = grad_y + t * BH + r0 * s.H;
        for (std::int64_t i = 0; i < rows * s.H; ++i) dh_step[static_cast<std::size_t>(i)] += gy[i];
      }
      T* dGt = dG.data() + (t * s.B + r0) * G;
      const std::int64_t st0 = t * BH + r0 * s.H, st1 = (t + 1) * BH + r0 * s.H;
      k.cell_backward(dh_step.data(), dc + r0 * s.H, gates + (t * s.B + r0) * G, cs + st0, cs + st1, dGt, rows, s.H);
      // dh_{t-1} = dG[t] . w_hh  (rows x 4H) . (4H x H)
      gemm_ex<T>(rows, s.H, G, StridedMatrix{dGt, G, 1}, whh_b, dh_rows, s.H, GemmEpilogue<T>{}, 1);
    }
  });
  const std::int64_t rows = s.T * s.B;
  // The weight gradients and grad_x, batched over every step:
  //   gw_ih = dG^T . x,  gw_hh = dG^T . h_{t-1},  gx = dG . w_ih
  gemm_ex<T>(G, s.I, rows, StridedMatrix{dG.data(), 1, G}, matrix(x, s.I, 1), gw_ih, s.I, GemmEpilogue<T>{}, 0);
  gemm_ex<T>(G, s.H, rows, StridedMatrix{dG.data(), 1, G}, matrix(hs, s.H, 1), gw_hh, s.H, GemmEpilogue<T>{}, 0);
  gemm_ex<T>(rows, s.I, G, StridedMatrix{dG.data(), G, 1}, matrix(w_ih, s.I, 1), gx, s.I, GemmEpilogue<T>{}, 0);
  // gb = column sums of dG: columns split over the pool; blocks of rows summed
  // in T (twice the lanes of double), each block's total added in double.
  parallel_for(G, 64, [&](std::int64_t j0, std::int64_t j1) {
    constexpr std::int64_t kBlock = 256;
    std::vector<double> total(static_cast<std::size_t>(j1 - j0), 0.0);
    std::vector<T> part(static_cast<std::size_t>(j1 - j0));
    for (std::int64_t r0 = 0; r0 < rows; r0 += kBlock) {
      std::fill(part.begin(), part.end(), T(0));
      for (std::int64_t r = r0; r < std::min(rows, r0 + kBlock); ++r) {
        const T* row = dG.data() + r * G + j0;
        for (std::int64_t j = 0; j < j1 - j0; ++j) part[static_cast<std::size_t>(j)] += row[j];
      }
      for (std::int64_t j = 0; j < j1 - j0; ++j) total[static_cast<std::size_t>(j)] += part[static_cast<std::size_t>(j)];
    }
    for (std::int64_t j = j0; j < j1; ++j) gb[j] = static_cast<T>(total[static_cast<std::size_t>(j - j0)]);
  });
}

template void lstm_forward<float>(const LstmShape&, const float*, const float*, const float*, const float*, float*,
                                  float*, float*);
template void lstm_forward<double>(const LstmShape&, const double*, const double*, const double*, const double*,
                                   double*, double*, double*);
template void lstm_backward<float>(const LstmShape&, const float*, float*, float*, const float*, const float*,
                                   const float*, const float*, const float*, const float*, float*, float*, float*,
                                   float*);
template void lstm_backward<double>(const LstmShape&, const double*, double*, double*, const double*, const double*,
                                    const double*, const double*, const double*, const double*, double*, double*,
                                    double*, double*);

}  // namespace cpu
}  // namespace pyfastnn
