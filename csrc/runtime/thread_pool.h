// The library's own thread pool: persistent workers that spin briefly and
// then sleep, a caller that works as thread 0, and a spin barrier for the
// phases inside one parallel region. No OpenMP: it must survive fork() and
// coexist with whatever runtime numpy or PyTorch brought.
#pragma once
#include <atomic>
#include <cstdint>

namespace pyfastnn {

// A non-owning reference to a callable `void(int tid, int nthreads)`; the
// pool runs one region at a time and the callable outlives it.
class TaskRef {
 public:
  template <class F>
  TaskRef(F& f) : obj_(&f), call_(&invoke<F>) {}  // NOLINT: implicit on purpose
  void operator()(int tid, int n) const { call_(obj_, tid, n); }

 private:
  template <class F>
  static void invoke(void* obj, int tid, int n) { (*static_cast<F*>(obj))(tid, n); }
  void* obj_;
  void (*call_)(void*, int, int);
};

// Default thread count: PYFASTNN_NUM_THREADS if set and valid, else one per
// physical core in the affinity mask.
int default_num_threads();
int get_num_threads();
void set_num_threads(int n);  // n >= 1, checked by the caller

// Runs task(tid, n) on n threads (the calling thread is tid 0) and returns
// when all are done. Calls from several threads are serialised, so the
// machine is never oversubscribed; n is clamped to [1, get_num_threads()].
void parallel_run(int n, TaskRef task);

// Sense-reversing barrier for the n threads of one parallel region.
class SpinBarrier {
 public:
  explicit SpinBarrier(int n) : n_(n) {}
  void wait();

 private:
  const int n_;
  std::atomic<int> arrived_{0};
  std::atomic<uint32_t> phase_{0};
};

}  // namespace pyfastnn
