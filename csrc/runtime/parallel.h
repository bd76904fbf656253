// Work split over the pool by claiming: the caller and the workers that wake
// in time take chunks from a shared counter until none is left, so a worker
// the OS has descheduled delays nobody (parallel_dynamic). Results never
// depend on who ran which chunk; reductions cut their input with
// fixed_chunks (a function of the size only) and add the chunks' partial
// results in chunk order, so they are bit-identical for any thread count.
#pragma once
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "runtime/thread_pool.h"

namespace pyfastnn {

// Hands out 0, 1, ..., count - 1, each index once, to whoever asks first.
class WorkCounter {
 public:
  explicit WorkCounter(std::int64_t count) : count_(count) {}
  bool next(std::int64_t* i) {
    *i = next_.fetch_add(1, std::memory_order_relaxed);
    return *i < count_;
  }

 private:
  alignas(64) std::atomic<std::int64_t> next_{0};
  const std::int64_t count_;
};

// body(i) for every i in [0, count), on whichever thread claims it. The
// calling thread times its chunks, so the pool can tell a worker that was
// descheduled from one that had a long chunk (thread_pool.h).
template <class F>
void parallel_chunks(std::int64_t count, int nthreads, F&& body) {
  if (count <= 0) return;
  WorkCounter work(count);
  const int nth = static_cast<int>(std::min<std::int64_t>(std::max(1, nthreads), count));
  if (nth <= 1) {
    for (std::int64_t i; work.next(&i);) body(i);
    return;
  }
  std::int64_t caller_chunk_ns = 0;
  auto task = [&](int tid, int) {
    if (tid != 0) {
      for (std::int64_t i; work.next(&i);) body(i);
      return;
    }
    auto t0 = std::chrono::steady_clock::now();
    for (std::int64_t i; work.next(&i);) {
      body(i);
      const auto t1 = std::chrono::steady_clock::now();
      caller_chunk_ns = std::max<std::int64_t>(
          caller_chunk_ns, std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
      t0 = t1;
    }
  };
  parallel_dynamic(nth, TaskRef(task), &caller_chunk_ns);
}

// Chunks claimed per thread in parallel_for: enough that a thread that starts
// late (or is descheduled) leaves little for the others to wait on.
constexpr std::int64_t kChunksPerThread = 4;

// body(begin, end) over [0, n) in chunks of at least `grain` items (small
// jobs stay on the calling thread), for work whose result does not depend on
// where it is cut. nthreads <= 0: get_num_threads().
template <class F>
void parallel_for(std::int64_t n, std::int64_t grain, F&& body, int nthreads = 0) {
  if (n <= 0) return;
  if (nthreads <= 0) nthreads = get_num_threads();
  grain = std::max<std::int64_t>(1, grain);
  const std::int64_t nth = std::min<std::int64_t>(nthreads, std::max<std::int64_t>(1, n / grain));
  if (nth <= 1) {
    body(std::int64_t{0}, n);
    return;
  }
  const std::int64_t chunk = std::max(grain, (n + nth * kChunksPerThread - 1) / (nth * kChunksPerThread));
  parallel_chunks((n + chunk - 1) / chunk, static_cast<int>(nth), [&](std::int64_t i) {
    body(i * chunk, std::min(n, (i + 1) * chunk));
  });
}

// A split of [0, n) into `count` chunks that depends on n and the limits
// only: chunks of at least min_size items (the last may be shorter), at most
// max_chunks of them.
struct FixedChunks {
  std::int64_t n = 0, size = 1, count = 0;
  std::int64_t begin(std::int64_t i) const { return i * size; }
  std::int64_t end(std::int64_t i) const { return std::min(n, (i + 1) * size); }
};

inline FixedChunks fixed_chunks(std::int64_t n, std::int64_t min_size, std::int64_t max_chunks) {
  FixedChunks c;
  c.n = std::max<std::int64_t>(0, n);
  max_chunks = std::max<std::int64_t>(1, max_chunks);
  c.size = std::max<std::int64_t>(std::max<std::int64_t>(1, min_size), (c.n + max_chunks - 1) / max_chunks);
  c.count = (c.n + c.size - 1) / c.size;
  return c;
}

}  // namespace pyfastnn
