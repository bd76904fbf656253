// Allocator tuning through glibc's mallopt (a no-op elsewhere).
#include "runtime/memory.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace pyfastnn {

AllocatorTuning tune_allocator(std::size_t mmap_threshold, std::size_t trim_threshold) {
  AllocatorTuning t;
#if defined(__GLIBC__)
  // Setting either one also turns off glibc's sliding thresholds, so they stay put.
  const bool ok_mmap = mallopt(M_MMAP_THRESHOLD, static_cast<int>(mmap_threshold)) == 1;
  const bool ok_trim = mallopt(M_TRIM_THRESHOLD, static_cast<int>(trim_threshold)) == 1;
  t.applied = ok_mmap && ok_trim;
  t.mmap_threshold = ok_mmap ? mmap_threshold : 0;
  t.trim_threshold = ok_trim ? trim_threshold : 0;
#else
  (void)mmap_threshold;
  (void)trim_threshold;
#endif
  return t;
}

}  // namespace pyfastnn
