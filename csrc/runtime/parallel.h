// parallel_for: [0, n) cut into one contiguous range per thread, with at
// least `grain` items per range (small jobs stay on the calling thread).
#pragma once
#include <algorithm>
#include <cstdint>

#include "runtime/thread_pool.h"

namespace pyfastnn {

// body(begin, end, part) with part in [0, parts); returns parts (<= threads).
template <class F>
int parallel_for_parts(std::int64_t n, std::int64_t grain, F&& body) {
  if (n <= 0) return 0;
  const std::int64_t by_grain = std::max<std::int64_t>(1, n / std::max<std::int64_t>(1, grain));
  const int nth = static_cast<int>(std::min<std::int64_t>(get_num_threads(), by_grain));
  if (nth <= 1) {
    body(std::int64_t{0}, n, 0);
    return 1;
  }
  auto task = [&](int tid, int parts) { body(n * tid / parts, n * (tid + 1) / parts, tid); };
  parallel_run(nth, TaskRef(task));
  return nth;
}

template <class F>
void parallel_for(std::int64_t n, std::int64_t grain, F&& body) {
  parallel_for_parts(n, grain, [&](std::int64_t a, std::int64_t b, int) { body(a, b); });
}

}  // namespace pyfastnn
