#include "runtime/dispatch.h"

#include <atomic>
#include <cstdlib>

namespace pyfastnn {

namespace {

std::string g_warning;

CpuIsa initial_isa() {
  const CpuIsa best = cpu_info().best_isa;
  const char* env = std::getenv("PYFASTNN_CPU_ISA");
  if (!env || !*env) return best;
  CpuIsa wanted;
  if (!parse_isa(env, &wanted)) {
    g_warning = std::string("PYFASTNN_CPU_ISA='") + env +
                "' is not one of scalar, avx2, avx512; using " + isa_name(best);
    return best;
  }
  if (static_cast<int>(wanted) > static_cast<int>(best)) {
    g_warning = std::string("PYFASTNN_CPU_ISA='") + env + "' is not supported by this CPU; using " +
                isa_name(best);
    return best;
  }
  return wanted;
}

std::atomic<int>& isa_slot() {
  static std::atomic<int> slot{static_cast<int>(initial_isa())};
  return slot;
}

}  // namespace

CpuIsa active_isa() { return static_cast<CpuIsa>(isa_slot().load(std::memory_order_relaxed)); }

bool set_active_isa(CpuIsa isa) {
  if (static_cast<int>(isa) > static_cast<int>(cpu_info().best_isa)) return false;
  isa_slot().store(static_cast<int>(isa), std::memory_order_relaxed);
  return true;
}

const std::string& isa_override_warning() {
  isa_slot();  // make sure the environment has been read
  return g_warning;
}

}  // namespace pyfastnn
