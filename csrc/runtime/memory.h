// Process allocator settings that keep large, short-lived arrays from being
// returned to the OS and faulted in again on every training step.
#pragma once

#include <cstddef>

namespace pyfastnn {

struct AllocatorTuning {
  bool applied = false;            // false where the C library offers no such knobs
  std::size_t mmap_threshold = 0;  // blocks at least this large are mapped, not taken from the heap
  std::size_t trim_threshold = 0;  // free memory kept at the heap's top before it is given back
};

// glibc's defaults map every block over ~128 KiB-32 MiB and give freed heap
// top back beyond twice that, so a training step's 1-10 MB activations and
// gradients are page-faulted (zeroed by the kernel) afresh each step.
AllocatorTuning tune_allocator(std::size_t mmap_threshold, std::size_t trim_threshold);

}  // namespace pyfastnn
