// The library's own thread pool: persistent workers that spin briefly and
// then sleep, and a caller that works as thread 0. No OpenMP: it must survive
// fork() and coexist with whatever runtime numpy or PyTorch brought.
//
// Each op binds itself to one pool for its whole run (OpScope): the thread
// count it reads at its start is the one every parallel region of that op
// gets, however set_num_threads changes the setting meanwhile from another
// Python thread; the new setting takes effect for the ops that start after.
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

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

// Most threads set_num_threads / PYFASTNN_NUM_THREADS accept.
constexpr int kMaxThreads = 1024;

// The OS refused to start a worker thread (its message says which and why).
class ThreadStartError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Default thread count: PYFASTNN_NUM_THREADS if set and valid, else one per
// physical core in the affinity mask.
int default_num_threads();
// Inside an op (an OpScope on this thread): the count that op started with.
// Elsewhere: the current setting.
int get_num_threads();
// n in [1, kMaxThreads], checked by the caller. Starts the n - 1 workers now;
// if the OS refuses one, throws ThreadStartError and keeps the old setting.
void set_num_threads(int n);

// Binds the calling thread to the current pool until it goes out of scope;
// every native op entry point holds one (a pybind11 call_guard). Nested
// scopes keep the outer binding. The default pool is started by the first
// scope; if the OS refuses some of its threads, it runs with those that
// started (get_num_threads() then says how many).
class Pool;
class OpScope {
 public:
  OpScope();
  ~OpScope();
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;

 private:
  std::shared_ptr<Pool> held_;  // the pool this scope keeps alive (empty in a nested scope)
};

// Runs task(tid, n) on n threads (the calling thread is tid 0) and returns
// when all are done: a static split, for work cut by tid. Calls from several
// threads are serialised, so the machine is never oversubscribed; n is
// clamped to [1, get_num_threads()].
void parallel_run(int n, TaskRef task);

// Runs task(tid, n) on the calling thread and on those of n - 1 workers that
// wake before the caller's own call returns (a worker the OS has descheduled
// is not waited for); returns when every participant is done. The task must
// take its work from a shared counter (see parallel.h), so whoever takes part
// finishes what is left; tid is only a distinct index for scratch space.
// caller_chunk_ns (optional): the longest chunk the caller ran, written by
// the task; a worker that finishes far later than that has been descheduled,
// and the pool then runs such regions on the caller alone for a while.
void parallel_dynamic(int n, TaskRef task, const std::int64_t* caller_chunk_ns = nullptr);

}  // namespace pyfastnn
