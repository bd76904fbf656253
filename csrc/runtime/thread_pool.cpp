// Persistent worker threads with a generation counter: a worker spins on the
// counter for a short while after each region (the next GEMM block usually
// follows within microseconds), then sleeps on a condition variable.
#include "runtime/thread_pool.h"

#include <immintrin.h>
#include <pthread.h>
#include <sched.h>

#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/cpu_info.h"

namespace pyfastnn {

namespace {

inline void cpu_relax() { _mm_pause(); }

// How long an idle worker polls before it sleeps (pause iterations).
constexpr int kSpinBeforeSleep = 1 << 16;

class ThreadPool {
 public:
  explicit ThreadPool(int workers) {
    threads_.reserve(workers);
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this, i] { worker_loop(i + 1); });
  }

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }

  int workers() const { return static_cast<int>(threads_.size()); }

  void run(int n, TaskRef task) {
    task_ = &task;
    task_n_ = n;
    done_.store(0, std::memory_order_relaxed);
    {
      // Workers that went to sleep check the generation under this lock.
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    if (sleepers_.load(std::memory_order_acquire) > 0) wake_.notify_all();
    task(0, n);
    const int expected = workers();
    int spins = 0;
    while (done_.load(std::memory_order_acquire) != expected) {
      if (++spins < kSpinBeforeSleep) cpu_relax();
      else std::this_thread::yield();
    }
    task_ = nullptr;
  }

 private:
  void worker_loop(int tid) {
    uint64_t seen = 0;
    for (;;) {
      int spins = 0;
      uint64_t gen;
      while ((gen = generation_.load(std::memory_order_acquire)) == seen) {
        if (++spins < kSpinBeforeSleep) {
          cpu_relax();
          continue;
        }
        std::unique_lock<std::mutex> lock(sleep_mutex_);
        sleepers_.fetch_add(1, std::memory_order_acq_rel);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        sleepers_.fetch_sub(1, std::memory_order_acq_rel);
        spins = 0;
      }
      seen = gen;
      if (stop_) return;
      if (tid < task_n_) (*task_)(tid, task_n_);
      done_.fetch_add(1, std::memory_order_acq_rel);
    }
  }

  std::vector<std::thread> threads_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> done_{0};
  std::atomic<int> sleepers_{0};
  TaskRef* task_ = nullptr;
  int task_n_ = 0;
  bool stop_ = false;
  std::mutex sleep_mutex_;
  std::condition_variable wake_;
};

// One region at a time, process-wide. Held across fork() (see atfork_*), so
// the child never inherits a pool in the middle of a region.
std::mutex g_run_mutex;
ThreadPool* g_pool = nullptr;  // intentionally leaked at exit: workers may be mid-spin
int g_num_threads = 0;         // 0 = not yet decided

void atfork_prepare() { g_run_mutex.lock(); }
void atfork_parent() { g_run_mutex.unlock(); }
void atfork_child() {
  // The workers do not exist in the child; forget (leak) the old pool and
  // start a new one lazily on the next parallel region.
  g_pool = nullptr;
  new (&g_run_mutex) std::mutex();
}

void register_atfork_once() {
  static const bool registered = [] {
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    return true;
  }();
  (void)registered;
}

ThreadPool* pool_with_workers(int workers) {
  if (g_pool && g_pool->workers() != workers) {
    delete g_pool;
    g_pool = nullptr;
  }
  if (!g_pool) g_pool = new ThreadPool(workers);
  return g_pool;
}

}  // namespace

int default_num_threads() {
  if (const char* env = std::getenv("PYFASTNN_NUM_THREADS")) {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v >= 1 && v <= 1024) return static_cast<int>(v);
  }
  return cpu_info().physical_cores;
}

int get_num_threads() {
  std::lock_guard<std::mutex> lock(g_run_mutex);
  if (g_num_threads == 0) g_num_threads = default_num_threads();
  return g_num_threads;
}

void set_num_threads(int n) {
  register_atfork_once();
  std::lock_guard<std::mutex> lock(g_run_mutex);
  g_num_threads = n < 1 ? 1 : n;
}

void parallel_run(int n, TaskRef task) {
  register_atfork_once();
  std::lock_guard<std::mutex> lock(g_run_mutex);
  if (g_num_threads == 0) g_num_threads = default_num_threads();
  if (n > g_num_threads) n = g_num_threads;
  if (n <= 1) {
    task(0, 1);
    return;
  }
  // Workers beyond n skip the region; the pool is only rebuilt when the
  // configured thread count changes.
  pool_with_workers(g_num_threads - 1)->run(n, task);
}

void SpinBarrier::wait() {
  const uint32_t phase = phase_.load(std::memory_order_acquire);
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
    arrived_.store(0, std::memory_order_relaxed);
    phase_.fetch_add(1, std::memory_order_release);
    return;
  }
  int spins = 0;
  while (phase_.load(std::memory_order_acquire) == phase) {
    if (++spins < kSpinBeforeSleep) cpu_relax();
    else std::this_thread::yield();
  }
}

}  // namespace pyfastnn
