// Loops 5-3 of the GEMM (BLIS order, mirrored for row-major C): C is cut into
// tiles that the threads claim from a shared counter (no static split, no
// barriers: a descheduled thread holds up one tile at most); within a tile,
// k blocks, then n blocks of packed B. A is read in place when its rows are
// contiguous, otherwise each tile packs its rows per k block.
#include "cpu/gemm/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "runtime/dispatch.h"
#include "runtime/parallel.h"

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

// The C tiles the threads claim: row blocks of `rows` (a multiple of mr) by
// column blocks of `cols` (a multiple of nr, at most one packed B block).
// Tile edges sit on whole slivers, so every element of C is computed by the
// same microkernel calls in the same k order whoever computes it and however
// C is cut: results do not depend on the thread count.
struct Tiling {
  std::int64_t rows, cols, m_tiles, n_tiles;
  std::int64_t count() const { return m_tiles * n_tiles; }
};

// Tiles: at least kTilesPerThread per thread, and more for large products so
// that no tile is much above kTileFlops: a thread that is slower than the
// others (its core shared with another process) or starts late then leaves
// at most one small tile for the rest to wait on. Rows are cut first, down to
// kMinTileSlivers slivers (a tile packs its own B, 1/rows of its multiply),
// then columns.
constexpr std::int64_t kTilesPerThread = 4;
constexpr double kTileFlops = 1 << 27;
constexpr std::int64_t kMinTileSlivers = 8;

Tiling choose_tiling(int nth, std::int64_t M, std::int64_t N, std::int64_t K, int mr, int nr, const GemmBlocking& bl) {
  const std::int64_t m_sl = ceil_div(M, mr), n_sl = ceil_div(N, nr);
  const std::int64_t mb_sl = std::max<std::int64_t>(1, bl.mb / mr), nb_sl = std::max<std::int64_t>(1, bl.nb / nr);
  std::int64_t n_tiles = ceil_div(n_sl, nb_sl);
  std::int64_t m_tiles = ceil_div(m_sl, mb_sl);
  if (nth > 1) {
    const double flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(std::max<std::int64_t>(K, 1));
    const std::int64_t target = std::max<std::int64_t>(kTilesPerThread * nth, static_cast<std::int64_t>(flops / kTileFlops));
    const std::int64_t m_limit = std::max(m_tiles, std::min(m_sl, ceil_div(m_sl, kMinTileSlivers)));
    if (m_tiles * n_tiles < target) m_tiles = std::min(m_limit, std::max(m_tiles, ceil_div(target, n_tiles)));
    if (m_tiles * n_tiles < target) n_tiles = std::min(n_sl, std::max(n_tiles, ceil_div(target, m_tiles)));
    if (m_tiles * n_tiles < kTilesPerThread * nth)  // few columns: shorter tiles after all
      m_tiles = std::min(m_sl, std::max(m_tiles, ceil_div(kTilesPerThread * nth, n_tiles)));
  }
  Tiling t;
  t.rows = ceil_div(m_sl, m_tiles) * mr;  // balanced sizes, whole slivers
  t.cols = ceil_div(n_sl, n_tiles) * nr;
  t.m_tiles = ceil_div(M, t.rows);
  t.n_tiles = ceil_div(N, t.cols);
  return t;
}

// C[m0 : m0+mcur, n0 : n0+ncur] over every k block in order: B packed per k
// block into this thread's scratch, A read in place when its rows are
// contiguous in k, else packed per k block too.
template <class T>
void gemm_tile(const Problem<T>& p, const GemmKernelSet<T>& ks, const GemmBlocking& bl, std::int64_t m0,
               std::int64_t mcur, std::int64_t n0, std::int64_t ncur) {
  const int mr = ks.mr, nr = ks.nr;
  const bool pack_a = !(p.csa == 1 && p.rsa != 0);
  const std::int64_t kc_max = std::max<std::int64_t>(1, std::min<std::int64_t>(bl.kc, p.K));
  T* ap = pack_a ? static_cast<T*>(thread_scratch(0, sizeof(T) * static_cast<std::size_t>(ceil_div(mcur, mr) * mr * kc_max)))
                 : nullptr;
  T* bp = p.b.prepacked ? nullptr
                        : static_cast<T*>(thread_scratch(1, sizeof(T) * static_cast<std::size_t>(
                                                                   kc_max * ceil_div(std::min(ncur, bl.nb), nr) * nr)));
  std::int64_t k0 = 0;
  do {  // runs once for K == 0, so bias/activation still reach C
    const int kc = static_cast<int>(std::min<std::int64_t>(bl.kc, p.K - k0));
    const bool first = k0 == 0, last = k0 + kc >= p.K;
    if (pack_a) ks.pack_a(mcur, kc, p.a + m0 * p.rsa + k0 * p.csa, p.rsa, p.csa, ap);
    for (std::int64_t nb0 = n0; nb0 < n0 + ncur; nb0 += bl.nb) {
      const std::int64_t nbcur = std::min<std::int64_t>(bl.nb, n0 + ncur - nb0);
      const T* b_block = bp;
      if (p.b.prepacked) {
        b_block = p.b.prepacked->data.data() + k0 * p.b.prepacked->n_padded + (p.b.prepacked_col0 + nb0) * kc;
      } else if (p.b.pack) {
        p.b.pack(p.b.ctx, kc, nbcur, k0, nb0, nr, bp);
      } else {
        const StridedMatrix& bm = p.b.matrix;
        ks.pack_b(kc, nbcur, static_cast<const T*>(bm.data) + k0 * bm.rs + nb0 * bm.cs, bm.rs, bm.cs, bp);
      }
      const T* a_block = pack_a ? ap : p.a + m0 * p.rsa + k0;
      const T* bias = p.ep.bias ? p.ep.bias + (p.ep.bias_per_row ? m0 : nb0) : nullptr;
      ks.macro_kernel(mcur, nbcur, kc, a_block, pack_a ? 0 : p.rsa, b_block, p.c + m0 * p.ldc + nb0, p.ldc,
                      !first || p.ep.accumulate, last, bias, p.ep.bias_per_row, p.ep.act);
    }
    k0 += kc;
  } while (k0 < p.K);
}

// Below this many flops a matrix product is not worth waking the pool.
constexpr double kMinFlopsPerThread = 1 << 19;

template <class T>
void gemm_threaded(const Problem<T>& p, const GemmKernelSet<T>& ks, const GemmBlocking& bl, int nthreads) {
  const double flops = 2.0 * p.M * p.N * std::max<std::int64_t>(p.K, 1);
  int nth = static_cast<int>(std::min<double>(nthreads, std::max(1.0, flops / kMinFlopsPerThread)));
  nth = std::max(nth, 1);
  const Tiling t = choose_tiling(nth, p.M, p.N, p.K, ks.mr, ks.nr, bl);
  // Tiles in row-major order: consecutive claims share A's rows.
  parallel_chunks(t.count(), nth, [&](std::int64_t i) {
    const std::int64_t m0 = (i / t.n_tiles) * t.rows, n0 = (i % t.n_tiles) * t.cols;
    gemm_tile(p, ks, bl, m0, std::min(t.rows, p.M - m0), n0, std::min(t.cols, p.N - n0));
  });
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
    parallel_chunks(batch, nthreads, [&](std::int64_t i) { gemm_threaded(problem(i), ks, bl, 1); });
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
