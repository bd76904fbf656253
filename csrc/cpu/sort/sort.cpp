// topk / sort drivers and the key kernel table. Lines (outer x inner of them)
// are split over the pool; a line that is not contiguous (dim not last) is
// copied into a per-thread buffer first. topk keeps a heap of the k best
// (key, index) pairs and skips ahead with a vectorised "first key above the
// heap's worst" scan, so a 50257-wide row with k <= 256 costs one pass over
// its keys; larger k select with nth_element. sort is a stable LSD radix sort
// of the keys (11 bits a pass, passes whose digit is constant skipped).
#include "cpu/sort/sort.h"

#include <algorithm>
#include <vector>

#include "runtime/dispatch.h"
#include "runtime/isa_table.h"
#include "runtime/parallel.h"

namespace pyfastnn {
namespace cpu {

namespace {

const IsaTable<SortKernels>& table() {
  static const IsaTable<SortKernels> t(&sort_kernels_scalar, &sort_kernels_avx2, &sort_kernels_avx512);
  return t;
}

template <class K>
struct Entry {
  K key;
  std::int64_t idx;
};

// a comes before b: larger key, then lower index. A strict total order.
template <class K>
inline bool better(const Entry<K>& a, const Entry<K>& b) {
  return a.key > b.key || (a.key == b.key && a.idx < b.idx);
}

// The key kernels for a value type (int64 values are their own keys), looked
// up once per call.
template <class T>
struct Keys {
  using K = SortKey<T>;
  using F = std::conditional_t<sizeof(K) == 4, float, double>;  // the table entry with this key width
  bool largest;
  void (*make_keys)(const T*, std::int64_t, bool, K*) = nullptr;
  std::int64_t (*find)(const K*, std::int64_t, std::int64_t, K) = sort_kernels<F>(active_isa()).find_above;

  explicit Keys(bool l) : largest(l) {
    if constexpr (!std::is_same_v<T, std::int64_t>) make_keys = sort_kernels<T>(active_isa()).make_keys;
  }
  void make(const T* x, std::int64_t n, K* keys) const {
    if constexpr (std::is_same_v<T, std::int64_t>) {
      const K flip = largest ? K(0) : K(-1);
      for (std::int64_t i = 0; i < n; ++i) keys[i] = x[i] ^ flip;
    } else {
      make_keys(x, n, largest, keys);
    }
  }
  std::int64_t find_above(const K* keys, std::int64_t i0, std::int64_t n, K t) const { return find(keys, i0, n, t); }
};

// Per-thread buffers, grown once per parallel chunk.
template <class T>
struct Scratch {
  std::vector<T> line;
  std::vector<SortKey<T>> keys;
  std::vector<Entry<SortKey<T>>> entries, best;
  std::vector<std::int64_t> count;
  std::vector<std::uint64_t> u[2];
  std::vector<std::int64_t> id[2];
};

// Runs body(line pointer, line number o * inner + i, scratch) over every line.
template <class T, class Body>
void for_lines(const T* x, std::int64_t outer, std::int64_t L, std::int64_t inner, Body&& body) {
  const std::int64_t lines = outer * inner;
  if (lines == 0) return;
  parallel_for(lines, std::max<std::int64_t>(1, (1 << 14) / std::max<std::int64_t>(1, L)),
               [&](std::int64_t a, std::int64_t b) {
                 Scratch<T> s;
                 s.keys.resize(static_cast<std::size_t>(L));
                 if (inner > 1) s.line.resize(static_cast<std::size_t>(L));
                 for (std::int64_t ln = a; ln < b; ++ln) {
                   const std::int64_t o = ln / inner, i = ln % inner;
                   const T* src = x + o * L * inner + i;
                   if (inner > 1) {
                     for (std::int64_t l = 0; l < L; ++l) s.line[l] = src[l * inner];
                     src = s.line.data();
                   }
                   body(src, ln, s);
                 }
               });
}

// The k best entries of a line's keys, best first, into out[0:k].
template <class T>
void select(const Keys<T>& kk, const SortKey<T>* keys, std::int64_t L, std::int64_t k, Scratch<T>& s,
            Entry<SortKey<T>>* out) {
  using E = Entry<SortKey<T>>;
  if (k == 0) return;
  if (k <= 256 && 4 * k <= L) {
    E* heap = out;  // a heap whose top is the worst of the k kept so far
    for (std::int64_t i = 0; i < k; ++i) heap[i] = E{keys[i], i};
    std::make_heap(heap, heap + k, better<SortKey<T>>);
    // A later key equal to the worst has a higher index, so it is worse: only
    // keys strictly above the worst enter.
    for (std::int64_t i = kk.find_above(keys, k, L, heap[0].key); i < L; i = kk.find_above(keys, i + 1, L, heap[0].key)) {
      std::pop_heap(heap, heap + k, better<SortKey<T>>);
      heap[k - 1] = E{keys[i], i};
      std::push_heap(heap, heap + k, better<SortKey<T>>);
    }
    std::sort(heap, heap + k, better<SortKey<T>>);
    return;
  }
  if (L <= 32) {  // short lines (topk along a small dim): an insertion sort, nothing else
    E buf[32];
    for (std::int64_t i = 0; i < L; ++i) {
      E e{keys[i], i};
      std::int64_t j = i;
      for (; j > 0 && better(e, buf[j - 1]); --j) buf[j] = buf[j - 1];
      buf[j] = e;
    }
    std::copy(buf, buf + k, out);
    return;
  }
  s.entries.resize(static_cast<std::size_t>(L));
  for (std::int64_t i = 0; i < L; ++i) s.entries[i] = E{keys[i], i};
  if (k < L) std::nth_element(s.entries.begin(), s.entries.begin() + (k - 1), s.entries.end(), better<SortKey<T>>);
  std::sort(s.entries.begin(), s.entries.begin() + k, better<SortKey<T>>);
  std::copy(s.entries.begin(), s.entries.begin() + k, out);
}

// Indices of the line in `better` order (key descending, index ascending): a
// stable LSD radix sort of u = the key's order as an unsigned number, starting
// from the indices in order. Returns the buffer holding the result.
template <class T>
const std::int64_t* radix_order(const SortKey<T>* keys, std::int64_t L, Scratch<T>& s) {
  using K = SortKey<T>;
  constexpr int kBits = 11, kBuckets = 1 << kBits, kWidth = 8 * sizeof(K);
  for (int b = 0; b < 2; ++b) {
    s.u[b].resize(static_cast<std::size_t>(L));
    s.id[b].resize(static_cast<std::size_t>(L));
  }
  const std::uint64_t sign = std::uint64_t{1} << (kWidth - 1);
  const std::uint64_t mask = kWidth == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << kWidth) - 1;
  for (std::int64_t i = 0; i < L; ++i) {
    // key descending = (~key) ascending as signed = that with the sign bit flipped, unsigned
    s.u[0][i] = (static_cast<std::uint64_t>(static_cast<std::int64_t>(static_cast<K>(~keys[i]))) & mask) ^ sign;
    s.id[0][i] = i;
  }
  int cur = 0;
  std::vector<std::int64_t>& count = s.count;
  count.resize(kBuckets + 1);
  for (int shift = 0; shift < kWidth; shift += kBits) {
    std::fill(count.begin(), count.end(), 0);
    const std::uint64_t* u = s.u[cur].data();
    for (std::int64_t i = 0; i < L; ++i) ++count[((u[i] >> shift) & (kBuckets - 1)) + 1];
    if (*std::max_element(count.begin(), count.end()) == L) continue;  // one digit value: order unchanged
    for (int d = 0; d < kBuckets; ++d) count[d + 1] += count[d];
    std::uint64_t* uo = s.u[1 - cur].data();
    const std::int64_t* io = s.id[cur].data();
    std::int64_t* ii = s.id[1 - cur].data();
    for (std::int64_t i = 0; i < L; ++i) {
      const std::int64_t at = count[(u[i] >> shift) & (kBuckets - 1)]++;
      uo[at] = u[i];
      ii[at] = io[i];
    }
    cur = 1 - cur;
  }
  return s.id[cur].data();
}

}  // namespace

template <>
const SortKernels<float>& sort_kernels<float>(CpuIsa isa) { return table().get<float>(isa); }
template <>
const SortKernels<double>& sort_kernels<double>(CpuIsa isa) { return table().get<double>(isa); }

template <class T>
void topk(const T* x, std::int64_t outer, std::int64_t L, std::int64_t inner, std::int64_t k, bool largest,
          T* values, std::int64_t* indices) {
  if (k == 0) return;
  const Keys<T> kk(largest);
  for_lines(x, outer, L, inner, [&](const T* line, std::int64_t ln, Scratch<T>& s) {
    kk.make(line, L, s.keys.data());
    std::vector<Entry<SortKey<T>>>& best = s.best;
    best.resize(static_cast<std::size_t>(k));
    select(kk, s.keys.data(), L, k, s, best.data());
    const std::int64_t o = ln / inner, i = ln % inner;
    for (std::int64_t j = 0; j < k; ++j) {
      const std::int64_t at = (o * k + j) * inner + i;
      values[at] = line[best[j].idx];
      indices[at] = best[j].idx;
    }
  });
}

template <class T>
void sort(const T* x, std::int64_t outer, std::int64_t L, std::int64_t inner, bool descending, T* values,
          std::int64_t* indices) {
  const Keys<T> kk(descending);
  for_lines(x, outer, L, inner, [&](const T* line, std::int64_t ln, Scratch<T>& s) {
    kk.make(line, L, s.keys.data());
    const std::int64_t* order = radix_order(s.keys.data(), L, s);
    const std::int64_t o = ln / inner, i = ln % inner;
    for (std::int64_t j = 0; j < L; ++j) {
      const std::int64_t at = (o * L + j) * inner + i;
      values[at] = line[order[j]];
      indices[at] = order[j];
    }
  });
}

#define PFN_SORT_INSTANTIATE(T)                                                                                   \
  template void topk<T>(const T*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, bool, T*,             \
                        std::int64_t*);                                                                         \
  template void sort<T>(const T*, std::int64_t, std::int64_t, std::int64_t, bool, T*, std::int64_t*);
PFN_SORT_INSTANTIATE(float)
PFN_SORT_INSTANTIATE(double)
PFN_SORT_INSTANTIATE(std::int64_t)
#undef PFN_SORT_INSTANTIATE

}  // namespace cpu
}  // namespace pyfastnn
