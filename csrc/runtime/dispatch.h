// The one place that decides which ISA level's kernels run: chosen once at
// import (best level the CPU supports, lowered by PYFASTNN_CPU_ISA).
#pragma once
#include <string>

#include "runtime/cpu_info.h"

namespace pyfastnn {

CpuIsa active_isa();
// Forces a level (tests); levels above the CPU's best are refused (false).
bool set_active_isa(CpuIsa isa);
// Non-empty if PYFASTNN_CPU_ISA was set to something unusable, saying why.
const std::string& isa_override_warning();

}  // namespace pyfastnn
