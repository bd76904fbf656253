// Persistent worker threads with a generation counter: a worker polls the
// counter for a short while after each region (the next GEMM block usually
// follows within microseconds), yielding its core to any other runnable
// thread, then sleeps on a condition variable. A region hands out
// participant slots from one atomic word, so a dynamic region can close its
// door once the caller is done and never wait for a worker that the OS has
// not scheduled yet.
#include "runtime/thread_pool.h"

#include <immintrin.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>
#include <vector>

#include "runtime/cpu_info.h"

namespace pyfastnn {

namespace {

inline void cpu_relax() { _mm_pause(); }

// Set while this thread runs a region's task: a parallel call from inside one
// runs inline (the caller of the outer region holds g_run_mutex).
thread_local bool t_in_region = false;

struct InRegion {
  InRegion() { t_in_region = true; }
  ~InRegion() { t_in_region = false; }
};

// Polling without hogging a shared core: a short burst of pause instructions
// (the next region, or a worker's last chunk, usually comes within
// microseconds), then sched_yield, so that a thread the OS has put on the same
// core (the region's caller, or another process's) runs instead. A worker
// that has polled kPolls times sleeps on the condition variable.
class Backoff {
 public:
  static constexpr int kPauses = 1 << 10;  // 10-150 us of pause instructions (10-140 ns each)
  static constexpr int kPolls = kPauses + 256;  // then ~200 us of yields where the core is free

  // One more wait step; false once the polling budget is spent.
  bool step() {
    if (++steps_ <= kPauses) cpu_relax();
    else std::this_thread::yield();
    return steps_ < kPolls;
  }
  void reset() { steps_ = 0; }

 private:
  int steps_ = 0;
};

// The participant slots of one region, in one word so that joining and
// closing are single atomic steps: bits 0-15 slots taken, 16-31 slots
// offered, 32-63 the region's generation (low bits). A worker can only take a
// slot of the region whose generation it saw.
constexpr std::uint64_t slots_word(std::uint64_t gen, std::uint32_t offered, std::uint32_t taken) {
  return (gen << 32) | (static_cast<std::uint64_t>(offered) << 16) | taken;
}
constexpr std::uint32_t slots_taken(std::uint64_t w) { return static_cast<std::uint32_t>(w & 0xffff); }
constexpr std::uint32_t slots_offered(std::uint64_t w) { return static_cast<std::uint32_t>((w >> 16) & 0xffff); }
constexpr std::uint32_t slots_gen(std::uint64_t w) { return static_cast<std::uint32_t>(w >> 32); }
static_assert(kMaxThreads < (1 << 16), "slot counts are 16-bit");

class ThreadPool {
 public:
  // Starts up to `workers` threads and stops at the first one the OS refuses
  // (start_error() then says why); those that started serve the regions.
  explicit ThreadPool(int workers) {
    try {
      threads_.reserve(static_cast<std::size_t>(workers));
      for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { worker_loop(); });
    } catch (const std::exception& e) {  // std::system_error (EAGAIN), or bad_alloc for the vector
      start_error_ = e.what();
    }
  }

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      stop_.store(true, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }

  int workers() const { return static_cast<int>(threads_.size()); }
  const std::string& start_error() const { return start_error_; }

  // One region with n - 1 worker slots (n - 1 <= workers()). Static: waits
  // until every slot was taken and its task returned. Dynamic: once the
  // caller's own task returns, closes the slots nobody took and waits only
  // for the workers that joined; while the workers are benched (see below),
  // the caller runs the task alone.
  void run(int n, TaskRef task, bool dynamic, const std::int64_t* caller_chunk_ns) {
    const std::int64_t start = now_ns();
    if (dynamic && start < bench_until_ns_) {
      task(0, n);
      return;
    }
    task_ = &task;
    task_n_ = n;
    finished_.store(0, std::memory_order_relaxed);
    error_ = nullptr;
    const std::uint64_t gen = generation_.load(std::memory_order_relaxed) + 1;
    slots_.store(slots_word(gen, static_cast<std::uint32_t>(n - 1), 0), std::memory_order_release);
    {
      // Workers that went to sleep check the generation under this lock.
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      generation_.store(gen, std::memory_order_release);
    }
    if (sleepers_.load(std::memory_order_acquire) > 0) wake_.notify_all();
    std::exception_ptr caller_error;
    try {
      task(0, n);
    } catch (...) {
      caller_error = std::current_exception();
    }
    const std::int64_t own_done = now_ns();
    int joined = n - 1;
    if (dynamic) {
      std::uint64_t w = slots_.load(std::memory_order_acquire);
      while (!slots_.compare_exchange_weak(w, slots_word(slots_gen(w), slots_taken(w), slots_taken(w)),
                                           std::memory_order_acq_rel)) {
      }
      joined = static_cast<int>(slots_taken(w));
    }
    Backoff wait;
    while (finished_.load(std::memory_order_acquire) != joined) wait.step();
    if (dynamic && joined > 0)
      judge_stragglers(now_ns() - own_done, own_done - start, caller_chunk_ns ? *caller_chunk_ns : 0);
    task_ = nullptr;
    if (caller_error) std::rethrow_exception(caller_error);
    if (error_) std::rethrow_exception(error_);
  }

 private:
  // Takes a slot of region `gen` if one is still offered; returns its tid (>= 1) or 0.
  int join(std::uint64_t gen) {
    std::uint64_t w = slots_.load(std::memory_order_acquire);
    for (;;) {
      if (slots_gen(w) != static_cast<std::uint32_t>(gen) || slots_taken(w) >= slots_offered(w)) return 0;
      if (slots_.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel)) return static_cast<int>(slots_taken(w)) + 1;
    }
  }

  static std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  // The caller cannot return while a worker that joined is still in the task
  // (it reads the caller's arrays), so a worker the OS deschedules holding a
  // chunk (another process busy on its core) stalls the region for a
  // scheduler slice, which in a short region is longer than the caller alone
  // would have taken. When the caller waited for the joined workers much
  // longer than one of its own chunks took, and for a good part of its own
  // time, the workers are benched: dynamic regions run on the caller alone
  // for 4 ms, doubling up to 128 ms while the stalls go on; a region without
  // a stall ends the bench. (In a long region a slice is a small loss next to
  // what the worker contributes, so it is not benched.) Only who computes
  // which chunk changes, never a result.
  void judge_stragglers(std::int64_t waited_ns, std::int64_t own_ns, std::int64_t chunk_ns) {
    if (waited_ns > std::max({kStallFloorNs, 2 * chunk_ns, own_ns / 4})) {
      bench_level_ = std::min(bench_level_ + 1, kMaxBenchLevel);
      bench_until_ns_ = now_ns() + (kBenchNs << (bench_level_ - 1));
    } else {
      bench_level_ = 0;
    }
  }

  static constexpr std::int64_t kStallFloorNs = 100000;
  static constexpr std::int64_t kBenchNs = 4000000;
  static constexpr int kMaxBenchLevel = 6;

  void worker_loop() {
    std::uint64_t seen = 0;
    for (;;) {
      Backoff idle;
      std::uint64_t gen;
      while ((gen = generation_.load(std::memory_order_acquire)) == seen) {
        if (idle.step()) continue;
        std::unique_lock<std::mutex> lock(sleep_mutex_);
        sleepers_.fetch_add(1, std::memory_order_acq_rel);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        sleepers_.fetch_sub(1, std::memory_order_acq_rel);
        idle.reset();
      }
      seen = gen;
      if (stop_.load(std::memory_order_relaxed)) return;
      const int tid = join(gen);
      if (tid == 0) continue;  // the region is full or over
      try {
        InRegion in_region;
        (*task_)(tid, task_n_);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex_);
        if (!error_) error_ = std::current_exception();
      }
      finished_.fetch_add(1, std::memory_order_acq_rel);
    }
  }

  std::vector<std::thread> threads_;
  std::string start_error_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<std::uint64_t> slots_{0};
  std::atomic<int> finished_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  TaskRef* task_ = nullptr;  // published by the release store of slots_, read after a slot is taken
  int task_n_ = 0;
  std::exception_ptr error_;
  std::mutex error_mutex_;
  std::int64_t bench_until_ns_ = 0;  // caller side only (under g_run_mutex)
  int bench_level_ = 0;
  std::mutex sleep_mutex_;
  std::condition_variable wake_;
};

}  // namespace

// One thread-count setting and the workers that serve it. set_num_threads
// makes a new Pool; ops bound to the old one finish on it, and the last of
// them to finish stops its workers.
class Pool {
 public:
  explicit Pool(int threads) : requested_(threads), threads_(threads) {}

  // Starts the workers (once). strict: if any is refused, stops those that
  // started and throws ThreadStartError; otherwise keeps them and runs with
  // that many threads.
  void start(bool strict) {
    if (started_.load(std::memory_order_acquire)) return;
    std::lock_guard<std::mutex> lock(start_mutex_);
    if (started_.load(std::memory_order_relaxed)) return;
    std::unique_ptr<ThreadPool> pool;
    if (requested_ > 1) {
      pool.reset(new ThreadPool(requested_ - 1));
      if (pool->workers() < requested_ - 1) {
        const std::string why = "could not start thread " + std::to_string(pool->workers() + 2) + " of " +
                                std::to_string(requested_) + " (" + pool->start_error() + ")";
        if (strict) throw ThreadStartError(why);
        threads_.store(pool->workers() + 1, std::memory_order_relaxed);
      }
    }
    workers_ = std::move(pool);
    started_.store(true, std::memory_order_release);
  }

  // Threads (caller included) regions on this pool get: the setting, or
  // fewer if the OS refused some workers.
  int threads() const { return threads_.load(std::memory_order_relaxed); }
  ThreadPool* workers() const { return workers_.get(); }

 private:
  const int requested_;
  std::atomic<int> threads_;
  std::atomic<bool> started_{false};
  std::mutex start_mutex_;
  std::unique_ptr<ThreadPool> workers_;
};

namespace {

// g_config_mutex guards the current pool and setting; g_run_mutex lets one
// region run at a time, process-wide (across old and new pools). Both are
// held across fork() (see atfork_*), so the child never inherits a pool in
// the middle of a region or of a swap.
std::mutex g_config_mutex;
std::mutex g_run_mutex;
std::shared_ptr<Pool> g_current;  // null until first needed, and in a fresh fork child
int g_setting = 0;                // threads of the next pool made; 0 = not yet decided
thread_local Pool* t_bound = nullptr;

void atfork_prepare() {
  g_config_mutex.lock();
  g_run_mutex.lock();
}
void atfork_parent() {
  g_run_mutex.unlock();
  g_config_mutex.unlock();
}
void atfork_child() {
  // The workers do not exist in the child: forget (leak) the parent's pool
  // without destroying it, and start a new one lazily at the next op.
  if (g_current) g_setting = g_current->threads();
  new (&g_current) std::shared_ptr<Pool>();
  new (&g_run_mutex) std::mutex();
  new (&g_config_mutex) std::mutex();
}

void register_atfork_once() {
  static const bool registered = [] {
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    return true;
  }();
  (void)registered;
}

std::shared_ptr<Pool> current_pool() {
  register_atfork_once();
  std::lock_guard<std::mutex> lock(g_config_mutex);
  if (!g_current) {
    if (g_setting == 0) g_setting = default_num_threads();
    g_current = std::make_shared<Pool>(g_setting);
  }
  return g_current;
}

void run_on_pool(int n, TaskRef task, bool dynamic, const std::int64_t* caller_chunk_ns) {
  std::shared_ptr<Pool> temporary;  // a call outside any op binds for itself
  Pool* pool = t_bound;
  if (!pool) {
    temporary = current_pool();
    temporary->start(false);
    pool = temporary.get();
  }
  if (n > pool->threads()) n = pool->threads();
  if (n <= 1 || t_in_region) {
    task(0, 1);
    return;
  }
  std::lock_guard<std::mutex> lock(g_run_mutex);
  InRegion in_region;
  pool->workers()->run(n, task, dynamic, caller_chunk_ns);
}

}  // namespace

int default_num_threads() {
  if (const char* env = std::getenv("PYFASTNN_NUM_THREADS")) {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v >= 1 && v <= kMaxThreads) return static_cast<int>(v);
  }
  return std::max(1, std::min(cpu_info().physical_cores, kMaxThreads));
}

int get_num_threads() {
  if (t_bound) return t_bound->threads();
  return current_pool()->threads();
}

void set_num_threads(int n) {
  n = std::max(1, std::min(n, kMaxThreads));
  std::shared_ptr<Pool> old = current_pool();
  if (old->threads() == n) return;
  auto fresh = std::make_shared<Pool>(n);
  fresh->start(true);  // throws ThreadStartError, leaving the old setting in place
  std::lock_guard<std::mutex> lock(g_config_mutex);
  g_current = std::move(fresh);
  g_setting = n;
  // `old` is released after the lock: if no op holds it, its workers stop here.
}

OpScope::OpScope() {
  if (t_bound) return;  // nested: the outer scope's pool
  held_ = current_pool();
  held_->start(false);
  t_bound = held_.get();
}

OpScope::~OpScope() {
  if (held_) t_bound = nullptr;
}

void parallel_run(int n, TaskRef task) { run_on_pool(n, task, false, nullptr); }
void parallel_dynamic(int n, TaskRef task, const std::int64_t* caller_chunk_ns) {
  run_on_pool(n, task, true, caller_chunk_ns);
}

}  // namespace pyfastnn
