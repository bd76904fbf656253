// What the processor offers: ISA levels (cpuid + OS support), cache sizes and
// the number of physical cores this process may run on.
#pragma once
#include <cstddef>

namespace pyfastnn {

enum class CpuIsa : int { scalar = 0, avx2 = 1, avx512 = 2 };

const char* isa_name(CpuIsa isa);
// Parses "scalar" / "avx2" / "avx512"; returns false for anything else.
bool parse_isa(const char* text, CpuIsa* out);

struct CpuInfo {
  CpuIsa best_isa;            // highest level the CPU and the OS both support
  std::size_t l1d_bytes;      // per core
  std::size_t l2_bytes;       // per core
  std::size_t l3_bytes;       // whole package (shared)
  int physical_cores;         // usable by this process (affinity), SMT siblings counted once
  int logical_cpus;           // usable by this process
};

// Detected once, then cached.
const CpuInfo& cpu_info();

}  // namespace pyfastnn
