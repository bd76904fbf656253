// Indexing drivers (see index.h): row copies, the sorted scatter-add of
// embedding's backward pass, and the N-d walks of gather / scatter_add.
#include "cpu/index/index.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <numeric>

#include "cpu/elementwise/elementwise.h"
#include "runtime/dispatch.h"
#include "runtime/parallel.h"

namespace pyfastnn {
namespace cpu {

namespace {

// Elements a thread should at least get before the pool is worth waking.
constexpr std::int64_t kGrainElems = 1 << 15;

// y += x over n elements: the vectorised kernel for floats, a plain loop otherwise.
template <class T>
void add_row(T* y, const T* x, std::int64_t n) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    elementwise_kernels<T>(active_isa()).add(y, x, n);
  } else {
    for (std::int64_t i = 0; i < n; ++i) y[i] += x[i];
  }
}

// Offsets into three arrays while a C-order multi-index walks `n` dims.
struct Walk {
  static constexpr int kMaxDims = 64;  // numpy's limit
  int n = 0;
  const std::int64_t* dims = nullptr;
  const std::int64_t* st[3] = {nullptr, nullptr, nullptr};
  std::array<std::int64_t, kMaxDims> pos{};
  std::int64_t off[3] = {0, 0, 0};

  Walk(int nd, const std::int64_t* d, const std::int64_t* s0, const std::int64_t* s1, const std::int64_t* s2)
      : n(nd), dims(d), st{s0, s1, s2} {}

  void seek(std::int64_t flat) {
    off[0] = off[1] = off[2] = 0;
    for (int k = n - 1; k >= 0; --k) {
      pos[k] = dims[k] ? flat % dims[k] : 0;
      flat = dims[k] ? flat / dims[k] : 0;
      for (int a = 0; a < 3; ++a) off[a] += pos[k] * st[a][k];
    }
  }

  void next() {
    for (int k = n - 1; k >= 0; --k) {
      ++pos[k];
      for (int a = 0; a < 3; ++a) off[a] += st[a][k];
      if (pos[k] < dims[k]) return;
      for (int a = 0; a < 3; ++a) off[a] -= st[a][k] * dims[k];
      pos[k] = 0;
    }
  }
};

// Calls body(index offset, data offset (without dim), other offset) over the
// index's shape. Work items are (outer position, row of the inner dims, block
// of the last dim); inside an item l (along dim) runs outside the last dim, so
// every (outer, inner) line is visited in increasing l by one thread, and the
// innermost loop has fixed strides.
template <class Body>
void walk_lines(const IndexGeometry& g, Body&& body) {
  const int nd = static_cast<int>(g.shape.size()), d = g.dim;
  std::int64_t outer = 1, inner = 1;
  for (int k = 0; k < d; ++k) outer *= g.shape[k];
  for (int k = d + 1; k < nd; ++k) inner *= g.shape[k];
  const std::int64_t L = g.shape[d];
  if (outer == 0 || inner == 0 || L == 0) return;
  const std::int64_t xs = g.index_strides[d], qs = g.other_strides[d];
  if (inner == 1) {  // dim is the last dim (or all after it are 1): tight loops along dim
    parallel_for(outer, std::max<std::int64_t>(1, kGrainElems / L), [&](std::int64_t a, std::int64_t b) {
      Walk o(d, g.shape.data(), g.index_strides.data(), g.data_strides.data(), g.other_strides.data());
      o.seek(a);
      for (std::int64_t oi = a; oi < b; ++oi, o.next())
        for (std::int64_t l = 0; l < L; ++l) body(o.off[0] + l * xs, o.off[1], o.off[2] + l * qs);
    });
    return;
  }
  const int last = nd - 1;
  const std::int64_t run = g.shape[last], rows = inner / run;
  const std::int64_t ls0 = g.index_strides[last], ls1 = g.data_strides[last], ls2 = g.other_strides[last];
  constexpr std::int64_t kBlock = 4096;
  const std::int64_t blocks = (run + kBlock - 1) / kBlock;
  const std::int64_t items = outer * rows * blocks;
  parallel_for(items, std::max<std::int64_t>(1, kGrainElems / (L * std::min(run, kBlock))),
               [&](std::int64_t a, std::int64_t b) {
                 Walk o(d, g.shape.data(), g.index_strides.data(), g.data_strides.data(), g.other_strides.data());
                 Walk in(last - d - 1, g.shape.data() + d + 1, g.index_strides.data() + d + 1,
                         g.data_strides.data() + d + 1, g.other_strides.data() + d + 1);
                 for (std::int64_t it = a; it < b; ++it) {
                   const std::int64_t oi = it / (rows * blocks), r = (it / blocks) % rows, bl = it % blocks;
                   const std::int64_t j0 = bl * kBlock, j1 = std::min(run, j0 + kBlock);
                   o.seek(oi);
                   in.seek(r);
                   const std::int64_t b0 = o.off[0] + in.off[0], b1 = o.off[1] + in.off[1], b2 = o.off[2] + in.off[2];
                   for (std::int64_t l = 0; l < L; ++l)
                     for (std::int64_t j = j0; j < j1; ++j) body(b0 + l * xs + j * ls0, b1 + j * ls1, b2 + l * qs + j * ls2);
                 }
               });
}

}  // namespace

template <class T>
void index_select(const T* x, std::int64_t so, std::int64_t sd, std::int64_t outer, std::int64_t inner,
                  const std::int64_t* idx, std::int64_t n, T* out) {
  const std::int64_t rows = outer * n;
  if (rows == 0 || inner == 0) return;
  parallel_for(rows, std::max<std::int64_t>(1, kGrainElems / inner), [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const std::int64_t o = r / n, j = r % n;
      const T* src = x + o * so + idx[j] * sd;
      if (inner == 1) out[r] = *src;
      else std::memcpy(out + r * inner, src, static_cast<std::size_t>(inner) * sizeof(T));
    }
  });
}

template <class T>
void embedding_backward(const T* g, const std::int64_t* idx, std::int64_t n, std::int64_t cols, std::int64_t skip,
                        T* gw) {
  if (cols == 0) return;
  // Positions sorted by row, stably (an LSD radix sort on the row, 11 bits a
  // pass: O(n) per pass, no table-sized buffer), so each row's gradients come
  // in the order they appear, whatever the thread count.
  std::vector<std::int64_t> order, tmp;
  order.reserve(static_cast<std::size_t>(n));
  std::int64_t top = 0;
  for (std::int64_t i = 0; i < n; ++i)
    if (idx[i] != skip) {
      order.push_back(i);
      top = std::max(top, idx[i]);
    }
  const std::int64_t m = static_cast<std::int64_t>(order.size());
  if (m == 0) return;
  tmp.resize(order.size());
  constexpr int kBits = 11;
  for (int shift = 0; shift < 64 && (shift == 0 || (top >> shift) != 0); shift += kBits) {
    std::int64_t count[(1 << kBits) + 1] = {0};
    for (std::int64_t p : order) ++count[((idx[p] >> shift) & ((1 << kBits) - 1)) + 1];
    for (int d = 0; d < (1 << kBits); ++d) count[d + 1] += count[d];
    for (std::int64_t p : order) tmp[static_cast<std::size_t>(count[(idx[p] >> shift) & ((1 << kBits) - 1)]++)] = p;
    order.swap(tmp);
  }
  std::vector<std::int64_t> starts;  // segment boundaries, one segment per distinct row
  for (std::int64_t k = 0; k < m; ++k)
    if (k == 0 || idx[order[k]] != idx[order[k - 1]]) starts.push_back(k);
  starts.push_back(m);
  const std::int64_t segments = static_cast<std::int64_t>(starts.size()) - 1;
  // Wide rows: threads take column slices of every segment (balanced even if one
  // row takes most of the gradients); narrow rows: threads take whole segments.
  // Either way each element sums its gradients in the same order.
  auto run_segments = [&](std::int64_t s0, std::int64_t s1, std::int64_t c0, std::int64_t c1) {
    for (std::int64_t s = s0; s < s1; ++s) {
      T* dst = gw + idx[order[starts[s]]] * cols + c0;
      for (std::int64_t k = starts[s]; k < starts[s + 1]; ++k) add_row(dst, g + order[k] * cols + c0, c1 - c0);
    }
  };
  constexpr std::int64_t kMinSlice = 128;
  if (cols >= 2 * kMinSlice) {
    parallel_for(cols / kMinSlice, std::max<std::int64_t>(1, kGrainElems / (kMinSlice * m)),
                 [&](std::int64_t a, std::int64_t b) {
                   const std::int64_t slices = cols / kMinSlice;
                   run_segments(0, segments, a * kMinSlice, b == slices ? cols : b * kMinSlice);
                 });
  } else {
    parallel_for(segments, std::max<std::int64_t>(1, kGrainElems / (cols * std::max<std::int64_t>(1, m / segments))),
                 [&](std::int64_t a, std::int64_t b) { run_segments(a, b, 0, cols); });
  }
}

template <class T>
void gather(const IndexGeometry& g, const T* x, const std::int64_t* index, T* out) {
  const std::int64_t xs = g.data_strides[g.dim];
  walk_lines(g, [&](std::int64_t io, std::int64_t xo, std::int64_t oo) { out[oo] = x[xo + index[io] * xs]; });
}

template <class T>
void scatter_add(const IndexGeometry& g, const T* src, const std::int64_t* index, T* out) {
  const std::int64_t os = g.data_strides[g.dim];
  walk_lines(g, [&](std::int64_t io, std::int64_t oo, std::int64_t so) { out[oo + index[io] * os] += src[so]; });
}

#define PFN_INDEX_INSTANTIATE(T)                                                                                   \
  template void index_select<T>(const T*, std::int64_t, std::int64_t, std::int64_t, std::int64_t,                  \
                                const std::int64_t*, std::int64_t, T*);                                            \
  template void gather<T>(const IndexGeometry&, const T*, const std::int64_t*, T*);                                \
  template void scatter_add<T>(const IndexGeometry&, const T*, const std::int64_t*, T*);
PFN_INDEX_INSTANTIATE(float)
PFN_INDEX_INSTANTIATE(double)
PFN_INDEX_INSTANTIATE(std::int64_t)
#undef PFN_INDEX_INSTANTIATE
template void embedding_backward<float>(const float*, const std::int64_t*, std::int64_t, std::int64_t, std::int64_t,
                                        float*);
template void embedding_backward<double>(const double*, const std::int64_t*, std::int64_t, std::int64_t,
                                         std::int64_t, double*);

}  // namespace cpu
}  // namespace pyfastnn
