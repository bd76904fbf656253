// Runtime queries and settings: ISA level, threads, caches, peak FLOP rate.
#include <pybind11/pybind11.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cpu/peak/peak.h"
#include "runtime/cpu_info.h"
#include "runtime/dispatch.h"
#include "runtime/memory.h"
#include "runtime/thread_pool.h"

namespace py = pybind11;

namespace pyfastnn {

namespace {

// Runs the FMA loop on n threads at once; returns total GFLOP/s.
double measure_peak_gflops(int nthreads, std::int64_t iters) {
  py::gil_scoped_release release;
  const CpuIsa isa = active_isa();
  cpu::fma_peak_loop(isa, iters / 10);  // warm up clocks and the pool
  std::vector<std::int64_t> flops(static_cast<std::size_t>(nthreads), 0);
  auto task = [&](int tid, int) { flops[static_cast<std::size_t>(tid)] = cpu::fma_peak_loop(isa, iters); };
  const auto t0 = std::chrono::steady_clock::now();
  parallel_run(nthreads, TaskRef(task));
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double total = 0;
  for (auto f : flops) total += static_cast<double>(f);
  return total / sec * 1e-9;
}

// Copies `bytes` with n threads (each its own slice) `repeats` times; returns
// GB/s counting bytes read plus bytes written, the median repeat (the same
// statistic as the op timings it is compared with).
double measure_copy_gbps(std::size_t bytes, int nthreads, int repeats) {
  std::vector<char> src(bytes, 1), dst(bytes, 0);
  py::gil_scoped_release release;
  std::vector<double> rates;
  for (int r = 0; r < repeats; ++r) {
    auto task = [&](int tid, int n) {
      const std::size_t b0 = bytes * tid / n, b1 = bytes * (tid + 1) / n;
      std::memcpy(dst.data() + b0, src.data() + b0, b1 - b0);
    };
    const auto t0 = std::chrono::steady_clock::now();
    parallel_run(nthreads, TaskRef(task));
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rates.push_back(2.0 * static_cast<double>(bytes) / sec * 1e-9);
  }
  std::sort(rates.begin(), rates.end());
  return rates.empty() ? 0.0 : rates[rates.size() / 2];
}

// Reads `bytes` with n threads (each its own slice) `repeats` times, summing
// 64-bit words with eight independent accumulators (enough loads in flight
// on any core); returns GB/s of bytes read, the median repeat. A memory-bound
// kernel that streams its operand once (a decode step's GEMV) is read against
// this figure.
double measure_read_gbps(std::size_t bytes, int nthreads, int repeats) {
  const std::size_t words = bytes / sizeof(std::uint64_t);
  std::vector<std::uint64_t> src(words, 1);
  std::vector<std::uint64_t> sink(static_cast<std::size_t>(std::max(nthreads, 1)), 0);
  py::gil_scoped_release release;
  std::vector<double> rates;
  for (int r = 0; r < repeats; ++r) {
    auto task = [&](int tid, int n) {
      const std::size_t w0 = words * tid / n, w1 = words * (tid + 1) / n;
      std::uint64_t acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      std::size_t i = w0;
      for (; i + 8 <= w1; i += 8)
        for (int u = 0; u < 8; ++u) acc[u] += src[i + u];
      for (; i < w1; ++i) acc[0] += src[i];
      sink[static_cast<std::size_t>(tid)] = acc[0] + acc[1] + acc[2] + acc[3] + acc[4] + acc[5] + acc[6] + acc[7];
    };
    const auto t0 = std::chrono::steady_clock::now();
    parallel_run(nthreads, TaskRef(task));
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rates.push_back(static_cast<double>(words * sizeof(std::uint64_t)) / sec * 1e-9);
  }
  volatile std::uint64_t keep = sink[0];  // the sums are used, so the loads stay
  (void)keep;
  std::sort(rates.begin(), rates.end());
  return rates.empty() ? 0.0 : rates[rates.size() / 2];
}

}  // namespace

void bind_runtime(py::module_& m) {
  m.def("cpu_isa", [] { return std::string(isa_name(active_isa())); }, "ISA level in use");
  m.def("best_cpu_isa", [] { return std::string(isa_name(cpu_info().best_isa)); },
        "Highest ISA level this CPU and OS support");
  m.def("isa_override_warning", [] { return isa_override_warning(); });
  m.def("_set_cpu_isa", [](const std::string& name) {
    CpuIsa isa;
    if (!parse_isa(name.c_str(), &isa))
      throw py::value_error("set_cpu_isa: argument 'isa' must be 'scalar', 'avx2' or 'avx512', got '" + name + "'");
    if (!set_active_isa(isa))
      throw py::value_error("set_cpu_isa: this CPU does not support '" + name + "'");
  });
  m.def("get_num_threads", [] { return get_num_threads(); });
  m.attr("max_threads") = kMaxThreads;
  m.def("set_num_threads", [](long long n) {
    if (n < 1 || n > kMaxThreads)
      throw py::value_error("set_num_threads: argument 'n' must be between 1 and " + std::to_string(kMaxThreads) +
                            ", got " + std::to_string(n));
    try {
      set_num_threads(static_cast<int>(n));
    } catch (const ThreadStartError& e) {
      throw std::runtime_error(std::string("set_num_threads: ") + e.what() + "; still using " +
                               std::to_string(get_num_threads()) + " threads");
    }
  });
  m.def(
      "tune_allocator",
      [](std::size_t mmap_threshold, std::size_t trim_threshold) {
        const AllocatorTuning t = tune_allocator(mmap_threshold, trim_threshold);
        py::dict d;
        d["applied"] = t.applied;
        d["mmap_threshold"] = t.mmap_threshold;
        d["trim_threshold"] = t.trim_threshold;
        return d;
      },
      py::arg("mmap_threshold"), py::arg("trim_threshold"));
  m.def("cpu_info", [] {
    const CpuInfo& c = cpu_info();
    py::dict d;
    d["l1d_bytes"] = c.l1d_bytes;
    d["l2_bytes"] = c.l2_bytes;
    d["l3_bytes"] = c.l3_bytes;
    d["physical_cores"] = c.physical_cores;
    d["logical_cpus"] = c.logical_cpus;
    return d;
  });
  m.def("measure_peak_gflops", &measure_peak_gflops, py::call_guard<OpScope>(), py::arg("nthreads"), py::arg("iters") = 20000000,
        "fp32 GFLOP/s of a register-only FMA loop on nthreads threads at the active ISA level");
  m.def("measure_read_gbps", &measure_read_gbps, py::call_guard<OpScope>(), py::arg("bytes"), py::arg("nthreads"), py::arg("repeats") = 9,
        "Memory read bandwidth in GB/s: n threads summing their slices of `bytes` (median of repeats)");
  m.def("measure_copy_gbps", &measure_copy_gbps, py::call_guard<OpScope>(), py::arg("bytes"), py::arg("nthreads"), py::arg("repeats") = 31,
        "memcpy bandwidth on nthreads threads (bytes read + written per second, median of repeats)");
}

}  // namespace pyfastnn
