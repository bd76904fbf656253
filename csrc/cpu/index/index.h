// Indexing kernels: row gathers (embedding, index_select), embedding's
// deterministic row scatter-add, and torch's gather / scatter_add along one
// dim of an N-d array. Memory-bound, so the drivers are compiled once; the
// row adds go through the elementwise table (vectorised per ISA level).
// Indices are checked by the caller (csrc/ops); kernels trust them.
#pragma once
#include <cstdint>
#include <vector>

namespace pyfastnn {
namespace cpu {

// out[o, j, 0:inner] = x[o * so + idx[j] * sd + (0:inner)] for o < outer, j < n;
// out contiguous (outer, n, inner), x's innermost stride 1. Rows split over the pool.
template <class T>
void index_select(const T* x, std::int64_t so, std::int64_t sd, std::int64_t outer, std::int64_t inner,
                  const std::int64_t* idx, std::int64_t n, T* out);

// gw[v, :] += g[i, :] for every i < n with idx[i] == v and v != skip (skip < 0:
// none). gw (rows of `cols`, contiguous) starts zeroed. The positions are
// radix-sorted by row once (O(n), nothing per table row), and each row sums its
// gradients in increasing i, so the result is the same bits for any thread count.
template <class T>
void embedding_backward(const T* g, const std::int64_t* idx, std::int64_t n, std::int64_t cols, std::int64_t skip,
                        T* gw);

// The loop space of gather / scatter_add: the index's shape, and element
// strides of the index, of the array indexed along `dim` (gather: x, read;
// scatter_add: out, written) and of the array that follows the index's shape
// (gather: out, written; scatter_add: src, read).
struct IndexGeometry {
  int dim = 0;
  std::vector<std::int64_t> shape, index_strides, data_strides, other_strides;
};

// out[p] = x[p with p[dim] replaced by index[p]], p over the index's shape.
template <class T>
void gather(const IndexGeometry& g, const T* x, const std::int64_t* index, T* out);

// out[p with p[dim] replaced by index[p]] += src[p], p over the index's shape.
// Work is split over the positions outside `dim`, so each output element takes
// its additions in increasing p[dim] on one thread: bit-identical for any
// thread count.
template <class T>
void scatter_add(const IndexGeometry& g, const T* src, const std::int64_t* index, T* out);

}  // namespace cpu
}  // namespace pyfastnn
