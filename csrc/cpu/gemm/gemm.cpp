// Loops 5-3 of the GEMM (BLIS order, mirrored for row-major C): m blocks of
// A, k blocks, then per-thread n blocks of packed B; the threads split C into
// a grid. A is read in place when its rows are contiguous; otherwise the
// threads pack each A block together and meet at a barrier around it.
#include "cpu/gemm/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "runtime/dispatch.h"
#include "runtime/thread_pool.h"

namespace pyfastnn {
namespace cpu {

namespace {

// Grow-only, 64-byte aligned scratch per thread and slot (0: A block, 1: B
// block). Pool threads are persistent, so steady-state calls allocate nothing.
void* thread_scratch(int slot, std::size_t bytes) {
  struct Scratch {
    void* ptr[2] = {nullptr, nullptr};
    std::size_t size[2] = {0, 0};
    ~Scratch() { for (void* p : ptr) std::free(p); }
  };
  thread_local Scratch s;
  if (s.size[slot] < bytes) {
    std::free(s.ptr[slot]);
    s.ptr[slot] = nullptr;
    s.size[slot] = 0;
    const std::size_t rounded = (bytes + 4095) / 4096 * 4096;
    void* p = nullptr;
    if (posix_memalign(&p, 64, rounded) != 0) throw std::bad_alloc();
    s.ptr[slot] = p;
    s.size[slot] = rounded;
  }
  return s.ptr[slot];
}

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

template <class T>
struct Problem {
  std::int64_t M, N, K;
  const T* a;
  std::ptrdiff_t rsa, csa;
  GemmB<T> b;
  T* c;
  std::ptrdiff_t ldc;
  GemmEpilogue<T> ep;
};

struct Grid {
  int tm, tn;
};

// [begin, end) of `total` items for part `idx` of `parts`, balanced.
inline void split_range(std::int64_t total, int parts, int idx, std::int64_t* begin, std::int64_t* end) {
  *begin = total * idx / parts;
  *end = total * (idx + 1) / parts;
}

// Splits the threads into tm x tn over (m slivers of one A block, n slivers).
// Cost per thread: its tile area plus the B packing it repeats when several
// threads share a column of the grid. A partial last n sliver costs only its
// width in whole vectors (the macro kernel narrows the tile for it), so with
// N = 64 against 48-wide slivers the threads split rows, not 48 + 16 columns.
Grid choose_grid(int nth, std::int64_t m_slivers, std::int64_t N, int mr, int nr, int lanes) {
  const std::int64_t n_slivers = ceil_div(N, nr);
  auto widest_part = [&](int tn) {
    std::int64_t widest = 0;
    for (int j = 0; j < tn; ++j) {
      std::int64_t s0, s1;
      split_range(n_slivers, tn, j, &s0, &s1);
      std::int64_t width = 0;
      for (std::int64_t s = s0; s < s1; ++s) width += std::min<std::int64_t>(nr, ceil_div(N - s * nr, lanes) * lanes);
      widest = std::max(widest, width);
    }
    return widest;
  };
  Grid best{1, nth};
  double best_cost = -1;
  for (int tm = 1; tm <= nth; ++tm) {
    if (nth % tm) continue;
    const int tn = nth / tm;
    const double rows = static_cast<double>(ceil_div(m_slivers, tm)) * mr;
    const double cols = static_cast<double>(widest_part(tn));
    const double cost = rows * cols + 4.0 * cols;
    if (best_cost < 0 || cost < best_cost - 1e-9) {
      best_cost = cost;
      best = {tm, tn};
    }
  }
  return best;
}

template <class T>
void gemm_region(const Problem<T>& p, const GemmKernelSet<T>& ks, const GemmBlocking& bl, int tid, int nth,
                 Grid grid, SpinBarrier* barrier, T* shared_ap) {
  const int mr = ks.mr, nr = ks.nr;
  const bool pack_a = shared_ap != nullptr;
  const int ti = tid / grid.tn, tj = tid % grid.tn;

  std::int64_t ns0, ns1;
  split_range(ceil_div(p.N, nr), grid.tn, tj, &ns0, &ns1);
  const std::int64_t n_begin = ns0 * nr, n_end = std::min(p.N, ns1 * nr);
  T* bp = static_cast<T*>(thread_scratch(1, sizeof(T) * static_cast<std::size_t>(bl.kc) * bl.nb));

  for (std::int64_t m0 = 0; m0 < p.M; m0 += bl.mb) {
    const std::int64_t mcur = std::min<std::int64_t>(bl.mb, p.M - m0);
    const std::int64_t m_slivers = ceil_div(mcur, mr);
    std::int64_t k0 = 0;
    do {  // runs once for K == 0, so bias/activation still reach C
      const int kc = static_cast<int>(std::min<std::int64_t>(bl.kc, p.K - k0));
      const bool first = k0 == 0, last = k0 + kc >= p.K;

      if (pack_a) {
        std::int64_t ps0, ps1;  // every thread packs a share of the A block
        split_range(m_slivers, nth, tid, &ps0, &ps1);
        if (ps1 > ps0) {
          const std::int64_t r0 = ps0 * mr, rows = std::min(mcur, ps1 * mr) - r0;
          ks.pack_a(rows, kc, p.a + (m0 + r0) * p.rsa + k0 * p.csa, p.rsa, p.csa, shared_ap + r0 * kc);
        }
        if (barrier) barrier->wait();
      }

      std::int64_t cs0, cs1;  // the A slivers this thread multiplies
      split_range(m_slivers, grid.tm, ti, &cs0, &cs1);
      if (cs1 > cs0) {
        const std::int64_t r0 = cs0 * mr, rows = std::min(mcur, cs1 * mr) - r0;
        for (std::int64_t n0 = n_begin; n0 < n_end; n0 += bl.nb) {
          const std::int64_t ncur = std::min<std::int64_t>(bl.nb, n_end - n0);
          const T* b_block = bp;
          if (p.b.prepacked) {
            b_block = p.b.prepacked->data.data() + k0 * p.b.prepacked->n_padded + (p.b.prepacked_col0 + n0) * kc;
          } else if (p.b.pack) {
            p.b.pack(p.b.ctx, kc, ncur, k0, n0, nr, bp);
          } else {
            const StridedMatrix& bm = p.b.matrix;
            ks.pack_b(kc, ncur, static_cast<const T*>(bm.data) + k0 * bm.rs + n0 * bm.cs, bm.rs, bm.cs, bp);
          }
          const T* a_block = pack_a ? shared_ap + r0 * kc : p.a + (m0 + r0) * p.rsa + k0;
          const T* bias = p.ep.bias ? p.ep.bias + (p.ep.bias_per_row ? m0 + r0 : n0) : nullptr;
          ks.macro_kernel(rows, ncur, kc, a_block, pack_a ? 0 : p.rsa, b_block, p.c + (m0 + r0) * p.ldc + n0, p.ldc,
                          !first || p.ep.accumulate, last, bias, p.ep.bias_per_row, p.ep.act);
        }
      }
      if (pack_a && barrier) barrier->wait();
      k0 += kc;
    } while (k0 < p.K);
  }
}

// Below this many flops a matrix product is not worth waking the pool.
constexpr double kMinFlopsPerThread = 1 << 19;

template <class T>
void gemm_threaded(const Problem<T>& p, const GemmKernelSet<T>& ks, const GemmBlocking& bl, int nthreads) {
  const double flops = 2.0 * p.M * p.N * std::max<std::int64_t>(p.K, 1);
  const std::int64_t m_slivers = ceil_div(std::min<std::int64_t>(p.M, bl.mb), ks.mr);
  const std::int64_t n_slivers = ceil_div(p.N, ks.nr);
  int nth = static_cast<int>(std::min<double>(nthreads, std::max(1.0, flops / kMinFlopsPerThread)));
  nth = static_cast<int>(std::min<std::int64_t>(nth, m_slivers * n_slivers));
  nth = std::max(nth, 1);
  const Grid grid = choose_grid(nth, m_slivers, p.N, ks.mr, ks.nr, ks.lanes);
  const std::int64_t kc_eff = std::max<std::int64_t>(1, std::min<std::int64_t>(bl.kc, p.K));
  // Row-major A (unit column stride) is read in place.
  const bool pack_a = !(p.csa == 1 && p.rsa != 0);
  T* shared_ap = pack_a ? static_cast<T*>(thread_scratch(
                              0, sizeof(T) * static_cast<std::size_t>(m_slivers * ks.mr * kc_eff)))
                        : nullptr;
  if (nth == 1) {
    gemm_region(p, ks, bl, 0, 1, Grid{1, 1}, nullptr, shared_ap);
    return;
  }
  // Every thread's private B block is allocated inside the region.
  SpinBarrier barrier(nth);
  auto task = [&](int tid, int n) { gemm_region(p, ks, bl, tid, n, grid, &barrier, shared_ap); };
  parallel_run(nth, TaskRef(task));
}

}  // namespace

template <class T>
void gemm(std::int64_t batch, std::int64_t M, std::int64_t N, std::int64_t K, StridedMatrix a,
          std::ptrdiff_t a_batch_stride, StridedMatrix b, std::ptrdiff_t b_batch_stride, T* c,
          const T* bias, Activation act, int nthreads) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  if (nthreads <= 0) nthreads = get_num_threads();
  const GemmKernelSet<T>& ks = gemm_kernels<T>(active_isa());
  const GemmBlocking bl = gemm_blocking(ks.mr, ks.nr, sizeof(T));
  GemmEpilogue<T> ep;
  ep.bias = bias;
  ep.act = act;
  auto problem = [&](std::int64_t i) {
    GemmB<T> bsrc;
    bsrc.matrix = StridedMatrix{static_cast<const T*>(b.data) + i * b_batch_stride, b.rs, b.cs};
    return Problem<T>{M, N, K, static_cast<const T*>(a.data) + i * a_batch_stride, a.rs, a.cs, bsrc,
                      c + i * M * N, N, ep};
  };
  const double flops_each = 2.0 * M * N * std::max<std::int64_t>(K, 1);
  // Many small products: one whole product per thread at a time, no barriers.
  if (batch > 1 && nthreads > 1 && flops_each < kMinFlopsPerThread * 8 * nthreads) {
    const int nth = static_cast<int>(std::min<std::int64_t>(batch, nthreads));
    auto task = [&](int tid, int n) {
      std::int64_t b0, b1;
      split_range(batch, n, tid, &b0, &b1);
      for (std::int64_t i = b0; i < b1; ++i) gemm_threaded(problem(i), ks, bl, 1);
    };
    parallel_run(nth, TaskRef(task));
    return;
  }
  for (std::int64_t i = 0; i < batch; ++i) gemm_threaded(problem(i), ks, bl, nthreads);
}

template <class T>
void gemm_ex(std::int64_t M, std::int64_t N, std::int64_t K, StridedMatrix a, const GemmB<T>& b, T* c,
             std::ptrdiff_t ldc, const GemmEpilogue<T>& ep, int nthreads) {
  if (M <= 0 || N <= 0) return;
  if (nthreads <= 0) nthreads = get_num_threads();
  const GemmKernelSet<T>& ks = gemm_kernels<T>(active_isa());
  const GemmBlocking bl = gemm_blocking(ks.mr, ks.nr, sizeof(T));
  const Problem<T> p{M, N, K, static_cast<const T*>(a.data), a.rs, a.cs, b, c, ldc, ep};
  gemm_threaded(p, ks, bl, nthreads);
}

template <class T>
PrepackedB<T> gemm_prepack_b(std::int64_t K, std::int64_t N, StridedMatrix b) {
  const GemmKernelSet<T>& ks = gemm_kernels<T>(active_isa());
  const GemmBlocking bl = gemm_blocking(ks.mr, ks.nr, sizeof(T));
  PrepackedB<T> out;
  out.K = K;
  out.N = N;
  out.kc = bl.kc;
  out.nr = ks.nr;
  out.n_padded = ceil_div(N, ks.nr) * ks.nr;
  out.data.resize(static_cast<std::size_t>(std::max<std::int64_t>(K, 1) * out.n_padded));
  const T* src = static_cast<const T*>(b.data);
  for (std::int64_t k0 = 0; k0 < K; k0 += bl.kc) {
    const int kc = static_cast<int>(std::min<std::int64_t>(bl.kc, K - k0));
    // Sliver s of this k block sits at k0 * n_padded + s * nr * kc, which is
    // where gemm_region looks for the block starting at column n0 = s * nr.
    ks.pack_b(kc, N, src + k0 * b.rs, b.rs, b.cs, out.data.data() + k0 * out.n_padded);
  }
  return out;
}

template PrepackedB<float> gemm_prepack_b<float>(std::int64_t, std::int64_t, StridedMatrix);
template PrepackedB<double> gemm_prepack_b<double>(std::int64_t, std::int64_t, StridedMatrix);

template void gemm_ex<float>(std::int64_t, std::int64_t, std::int64_t, StridedMatrix, const GemmB<float>&, float*,
                             std::ptrdiff_t, const GemmEpilogue<float>&, int);
template void gemm_ex<double>(std::int64_t, std::int64_t, std::int64_t, StridedMatrix, const GemmB<double>&,
                              double*, std::ptrdiff_t, const GemmEpilogue<double>&, int);

template void gemm<float>(std::int64_t, std::int64_t, std::int64_t, std::int64_t, StridedMatrix, std::ptrdiff_t,
                          StridedMatrix, std::ptrdiff_t, float*, const float*, Activation, int);
template void gemm<double>(std::int64_t, std::int64_t, std::int64_t, std::int64_t, StridedMatrix, std::ptrdiff_t,
                           StridedMatrix, std::ptrdiff_t, double*, const double*, Activation, int);

}  // namespace cpu
}  // namespace pyfastnn
