#include "inference/thread_pool.h"

#include <algorithm>

#include "base/parallel.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MB_CPU_RELAX() _mm_pause()
#else
#define MB_CPU_RELAX() ((void)0)
#endif

namespace mb::inference {

namespace {
// How long an idle worker spins before it sleeps: long enough to bridge the
// gap between two matmuls of one decode step, short enough not to burn a core
// between requests.
constexpr int kSpinIterations = 20000;

// A pause, and now and then a yield so that a spinning thread does not hold
// a core that a descheduled worker needs (more threads than cores).
inline void relax(int i) {
  MB_CPU_RELAX();
  if (i % 64 == 0) std::this_thread::yield();
}
}  // namespace

ThreadPool::ThreadPool(int threads) {
  threads = resolve_threads(threads);
  for (int i = 1; i < threads; ++i) m_workers.emplace_back([this] { worker_main(); });
}

ThreadPool::~ThreadPool() {
  m_stop.store(true);
  m_generation.fetch_add(1);
  m_generation.notify_all();
  for (auto& t : m_workers) t.join();
}

void ThreadPool::work_on(Job& job) {
  for (;;) {
    const int64_t begin = job.next.fetch_add(job.grain);
    if (begin >= job.n) return;
    const int64_t end = std::min(job.n, begin + job.grain);
    job.thunk(job.ctx, begin, end);
    job.done.fetch_add(end - begin, std::memory_order_release);
  }
}

void ThreadPool::run(int64_t n, int64_t grain, Thunk thunk, void* ctx) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  if (m_workers.empty() || n <= grain) {
    thunk(ctx, 0, n);
    return;
  }
  Job job{thunk, ctx, n, grain};
  m_job.store(&job);
  m_generation.fetch_add(1);
  m_generation.notify_all();
  work_on(job);
  for (int i = 1; job.done.load(std::memory_order_acquire) < n; ++i) relax(i);
  // Retire the job, then wait for workers that picked up its pointer (they
  // find no chunk left and leave at once). A worker announces itself in
  // m_inside before reading m_job, so it either sees nullptr or is counted.
  m_job.store(nullptr);
  for (int i = 1; m_inside.load() != 0; ++i) relax(i);
}

void ThreadPool::worker_main() {
  uint32_t seen = 0;
  for (;;) {
    uint32_t gen = m_generation.load(std::memory_order_acquire);
    for (int i = 1; gen == seen && i < kSpinIterations; ++i) {
      relax(i);
      gen = m_generation.load(std::memory_order_acquire);
    }
    while (gen == seen) {
      m_generation.wait(seen, std::memory_order_acquire);
      gen = m_generation.load(std::memory_order_acquire);
    }
    seen = gen;
    if (m_stop.load()) return;
    m_inside.fetch_add(1);
    if (Job* job = m_job.load()) work_on(*job);
    m_inside.fetch_sub(1);
  }
}

}  // namespace mb::inference
