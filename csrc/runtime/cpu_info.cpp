// Detects ISA support with cpuid/xgetbv, reads cache sizes and core topology
// from sysfs (falling back to cpuid leaf values that are safe everywhere).
#include "runtime/cpu_info.h"

#include <cpuid.h>
#include <sched.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <utility>

namespace pyfastnn {

const char* isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::scalar: return "scalar";
    case CpuIsa::avx2: return "avx2";
    case CpuIsa::avx512: return "avx512";
  }
  return "unknown";
}

bool parse_isa(const char* text, CpuIsa* out) {
  if (!text) return false;
  if (!std::strcmp(text, "scalar")) { *out = CpuIsa::scalar; return true; }
  if (!std::strcmp(text, "avx2")) { *out = CpuIsa::avx2; return true; }
  if (!std::strcmp(text, "avx512")) { *out = CpuIsa::avx512; return true; }
  return false;
}

namespace {

unsigned long long read_xcr0() {
  unsigned int eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

CpuIsa detect_isa() {
  unsigned int eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return CpuIsa::scalar;
  const bool has_osxsave = ecx & bit_OSXSAVE;
  const bool has_avx = ecx & bit_AVX;
  const bool has_fma = ecx & bit_FMA;
  const bool has_f16c = ecx & bit_F16C;
  if (!has_osxsave || !has_avx) return CpuIsa::scalar;
  const unsigned long long xcr0 = read_xcr0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;      // SSE + AVX state
  const bool os_zmm = (xcr0 & 0xE6) == 0xE6;    // + opmask, ZMM_Hi256, Hi16_ZMM
  if (!os_ymm) return CpuIsa::scalar;
  if (__get_cpuid_max(0, nullptr) < 7) return CpuIsa::scalar;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const bool has_avx2 = ebx & bit_AVX2;
  const bool has_avx512 = (ebx & bit_AVX512F) && (ebx & bit_AVX512DQ) && (ebx & bit_AVX512BW) &&
                          (ebx & bit_AVX512VL);
  if (!(has_avx2 && has_fma && has_f16c)) return CpuIsa::scalar;
  if (has_avx512 && os_zmm) return CpuIsa::avx512;
  return CpuIsa::avx2;
}

bool read_text(const std::string& path, std::string* out) {
  std::ifstream f(path);
  if (!f) return false;
  std::getline(f, *out);
  return true;
}

std::size_t parse_size(const std::string& s) {
  // sysfs writes "48K", "1024K", "32768K" (sometimes "M").
  char* end = nullptr;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (end && (*end == 'K' || *end == 'k')) v *= 1024;
  else if (end && (*end == 'M' || *end == 'm')) v *= 1024 * 1024;
  return static_cast<std::size_t>(v);
}

void read_caches(CpuInfo* info) {
  for (int idx = 0; idx < 8; ++idx) {
    const std::string base = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(idx) + "/";
    std::string level, type, size;
    if (!read_text(base + "level", &level) || !read_text(base + "type", &type) ||
        !read_text(base + "size", &size))
      break;
    const std::size_t bytes = parse_size(size);
    if (bytes == 0) continue;
    if (level == "1" && type == "Data") info->l1d_bytes = bytes;
    else if (level == "2" && type != "Instruction") info->l2_bytes = bytes;
    else if (level == "3" && type != "Instruction") info->l3_bytes = bytes;
  }
}

void read_topology(CpuInfo* info) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) {
    info->logical_cpus = info->physical_cores = 1;
    return;
  }
  int logical = 0;
  std::set<std::pair<std::string, std::string>> cores;  // (package, core id)
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    ++logical;
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::string pkg, core;
    if (read_text(base + "physical_package_id", &pkg) && read_text(base + "core_id", &core))
      cores.insert({pkg, core});
    else
      cores.insert({"cpu", std::to_string(cpu)});  // no topology: count every CPU
  }
  info->logical_cpus = logical > 0 ? logical : 1;
  info->physical_cores = cores.empty() ? info->logical_cpus : static_cast<int>(cores.size());
}

CpuInfo detect() {
  CpuInfo info;
  info.best_isa = detect_isa();
  // Conservative defaults if sysfs is missing (containers, odd kernels).
  info.l1d_bytes = 32 * 1024;
  info.l2_bytes = 512 * 1024;
  info.l3_bytes = 8 * 1024 * 1024;
  read_caches(&info);
  read_topology(&info);
  return info;
}

}  // namespace

const CpuInfo& cpu_info() {
  static const CpuInfo info = detect();
  return info;
}

}  // namespace pyfastnn
