#include "graph/scheduler.h"

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

namespace mb {
namespace {

// The state of one Scheduler::run, shared by its worker threads under `mu`.
class SchedulerRun {
 public:
  SchedulerRun(const std::vector<std::vector<int>>& deps, const std::vector<std::vector<int>>& after,
               const std::function<bool(int)>& task, const std::function<bool(int)>& ready, bool keep_going)
      : m_task(task), m_ready(ready), m_keep_going(keep_going), m_n(static_cast<int>(deps.size())) {
    m_state.assign(static_cast<size_t>(m_n), NodeState::kPending);
    m_waiting.assign(static_cast<size_t>(m_n), 0);
    m_users.resize(static_cast<size_t>(m_n));
    m_followers.resize(static_cast<size_t>(m_n));
    for (int i = 0; i < m_n; ++i) {
      m_waiting[i] = static_cast<int>(deps[i].size());
      for (int d : deps[i]) m_users[d].push_back(i);
      if (static_cast<size_t>(i) >= after.size()) continue;
      m_waiting[i] += static_cast<int>(after[i].size());
      for (int a : after[i]) m_followers[a].push_back(i);
    }
    for (int i = 0; i < m_n; ++i)
      if (m_waiting[i] == 0) m_queue.push_back(i);
  }

  void worker() {
    std::unique_lock<std::mutex> lock(m_mu);
    for (;;) {
      m_cv.wait(lock, [&] { return !m_queue.empty() || m_finished == m_n || (m_stop && m_running == 0); });
      if (m_finished == m_n || (m_stop && m_queue.empty() && m_running == 0)) break;
      if (m_queue.empty()) continue;
      const int i = m_queue.front();
      m_queue.pop_front();
      if (m_state[i] != NodeState::kPending) continue;
      if (m_stop || (m_ready && !m_ready(i))) {
        skip(i);
        m_cv.notify_all();
        continue;
      }
      ++m_running;
      lock.unlock();
      const bool ok = run_task(i);
      lock.lock();
      finish(i, ok);
      m_cv.notify_all();
    }
    m_cv.notify_all();
  }

  std::vector<NodeState> result() {
    // Anything never reached (after a stop) counts as skipped.
    for (auto& s : m_state)
      if (s == NodeState::kPending) s = NodeState::kSkipped;
    return m_state;
  }

 private:
  // The task's own failure handling is the builder's; this is the last net,
  // so that a throw can never end the process from a worker thread.
  bool run_task(int i) {
    try {
      return m_task(i);
    } catch (...) {
      return false;
    }
  }

  // REQUIRES: m_mu held.
  void finish(int i, bool ok) {
    --m_running;
    ++m_finished;
    m_state[i] = ok ? NodeState::kSucceeded : NodeState::kFailed;
    release_followers(i);
    if (ok) {
      for (int u : m_users[i]) release(u);
      return;
    }
    for (int u : m_users[i]) skip(u);
    if (!m_keep_going) m_stop = true;
  }

  // One of `u`'s edges is satisfied. REQUIRES: m_mu held.
  void release(int u) {
    if (--m_waiting[u] == 0 && m_state[u] == NodeState::kPending) m_queue.push_back(u);
  }

  // `i` has finished, however it ended: what only had to wait for it may go.
  // REQUIRES: m_mu held.
  void release_followers(int i) {
    for (int f : m_followers[i]) release(f);
  }

  // Marks `i` and everything downstream skipped. REQUIRES: m_mu held.
  void skip(int i) {
    if (m_state[i] != NodeState::kPending) return;
    m_state[i] = NodeState::kSkipped;
    ++m_finished;
    release_followers(i);
    for (int u : m_users[i]) skip(u);
  }

  const std::function<bool(int)>& m_task;
  const std::function<bool(int)>& m_ready;
  const bool m_keep_going;
  const int m_n;
  std::mutex m_mu;
  std::condition_variable m_cv;
  std::vector<NodeState> m_state;
  std::vector<int> m_waiting;
  std::vector<std::vector<int>> m_users;      // i -> nodes that read i's output
  std::vector<std::vector<int>> m_followers;  // i -> nodes ordered after i
  std::deque<int> m_queue;
  int m_running = 0;
  int m_finished = 0;
  bool m_stop = false;  // a failure without keep_going
};

}  // namespace

std::vector<NodeState> Scheduler::run(const std::vector<std::vector<int>>& deps, const std::function<bool(int)>& task,
                                      const std::function<bool(int)>& ready,
                                      const std::vector<std::vector<int>>& after) {
  SchedulerRun run(deps, after, task, ready, m_keep_going);
  std::vector<std::thread> threads;
  const int n = std::min(m_jobs, std::max(static_cast<int>(deps.size()), 1));
  for (int t = 0; t < n; ++t) threads.emplace_back([&] { run.worker(); });
  for (auto& t : threads) t.join();
  return run.result();
}

}  // namespace mb
