#pragma once
// ThreadPool: a fixed set of worker threads that run data-parallel loops for
// the forward pass.
//
// parallel_for() splits [0, n) into chunks of `grain` items; the caller and
// whichever workers are awake claim chunks from a shared counter, and
// parallel_for() returns when every chunk is done. The caller never waits
// for a worker that has not started (on a busy machine a sleeping worker may
// take milliseconds to be scheduled; the caller then just does the work).
// Which thread runs which chunk varies from call to call, so callers must
// make every output element depend on one chunk only (the kernels split
// output rows, never a sum): results are then identical for any thread
// count. Workers spin briefly after a loop (decode issues a few hundred short
// loops per token) and then sleep on a futex.
//
// One ThreadPool serves one caller at a time: parallel_for() is not reentrant
// and must not be called concurrently from two threads.
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace mb::inference {

class ThreadPool {
 public:
  // `threads` counts the calling thread; 0 means one per hardware thread.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(m_workers.size()) + 1; }

  // Calls fn(begin, end) over disjoint chunks covering [0, n).
  template <typename Fn>
  void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
    auto thunk = [](void* ctx, int64_t b, int64_t e) { (*static_cast<Fn*>(ctx))(b, e); };
    run(n, grain, thunk, &fn);
  }

 private:
  using Thunk = void (*)(void*, int64_t, int64_t);
  struct Job {
    Thunk thunk;
    void* ctx;
    int64_t n;
    int64_t grain;
    std::atomic<int64_t> next{0};  // first unclaimed index
    std::atomic<int64_t> done{0};  // items finished
  };
  void run(int64_t n, int64_t grain, Thunk thunk, void* ctx);
  static void work_on(Job& job);
  void worker_main();

  std::vector<std::thread> m_workers;
  std::atomic<Job*> m_job{nullptr};  // the caller's job while parallel_for runs
  std::atomic<int> m_inside{0};      // workers that may hold m_job
  std::atomic<uint32_t> m_generation{0};
  std::atomic<bool> m_stop{false};
};

}  // namespace mb::inference
