// A register-only FMA loop that measures the machine's fp32 peak: enough
// independent accumulators to cover FMA latency on every current core.
#pragma once
#include <cstdint>

#include "runtime/cpu_info.h"

namespace pyfastnn {
namespace cpu {

// Runs `iters` iterations of independent fp32 FMAs at the given ISA level and
// returns the number of floating-point operations performed.
std::int64_t fma_peak_loop(CpuIsa isa, std::int64_t iters);

std::int64_t fma_peak_loop_scalar(std::int64_t iters);
std::int64_t fma_peak_loop_avx2(std::int64_t iters);
std::int64_t fma_peak_loop_avx512(std::int64_t iters);

}  // namespace cpu
}  // namespace pyfastnn
