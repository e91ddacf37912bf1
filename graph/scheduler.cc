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
  SchedulerRun(const std::vector<std::vector<int>>& deps, const std::function<bool(int)>& task,
               const std::function<bool(int)>& ready, bool keep_going)
      : m_task(task), m_ready(ready), m_keep_going(keep_going), m_n(static_cast<int>(deps.size())) {
    m_state.assign(static_cast<size_t>(m_n), NodeState::kPending);
    m_waiting.assign(static_cast<size_t>(m_n), 0);
    m_users.resize(static_cast<size_t>(m_n));
    for (int i = 0; i < m_n; ++i) {
      m_waiting[i] = static_cast<int>(deps[i].size());
      for (int d : deps[i]) m_users[d].push_back(i);
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
    if (ok) {
      for (int u : m_users[i])
        if (--m_waiting[u] == 0) m_queue.push_back(u);
      return;
    }
    for (int u : m_users[i]) skip(u);
    if (!m_keep_going) m_stop = true;
  }

  // Marks `i` and everything downstream skipped. REQUIRES: m_mu held.
  void skip(int i) {
    if (m_state[i] != NodeState::kPending) return;
    m_state[i] = NodeState::kSkipped;
    ++m_finished;
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
  std::vector<std::vector<int>> m_users;
  std::deque<int> m_queue;
  int m_running = 0;
  int m_finished = 0;
  bool m_stop = false;  // a failure without keep_going
};

}  // namespace

std::vector<NodeState> Scheduler::run(const std::vector<std::vector<int>>& deps, const std::function<bool(int)>& task,
                                      const std::function<bool(int)>& ready) {
  SchedulerRun run(deps, task, ready, m_keep_going);
  std::vector<std::thread> threads;
  const int n = std::min(m_jobs, std::max(static_cast<int>(deps.size()), 1));
  for (int t = 0; t < n; ++t) threads.emplace_back([&] { run.worker(); });
  for (auto& t : threads) t.join();
  return run.result();
}

}  // namespace mb
