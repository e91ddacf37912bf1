#include "graph/scheduler.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace mb {

std::vector<NodeState> Scheduler::run(const std::vector<std::vector<int>>& deps, const std::function<bool(int)>& task,
                                      const std::function<bool(int)>& ready) {
  const int n = static_cast<int>(deps.size());
  std::vector<NodeState> state(n, NodeState::kPending);
  std::vector<int> waiting(n, 0);
  std::vector<std::vector<int>> users(n);
  for (int i = 0; i < n; ++i) {
    waiting[i] = static_cast<int>(deps[i].size());
    for (int d : deps[i]) users[d].push_back(i);
  }

  std::mutex mu;
  std::condition_variable cv;
  std::deque<int> queue;
  int running = 0;
  int finished = 0;
  bool stop = false;  // a failure without keep_going

  // Marks `i` and everything downstream skipped. REQUIRES: mu held.
  std::function<void(int)> skip = [&](int i) {
    if (state[i] != NodeState::kPending) return;
    state[i] = NodeState::kSkipped;
    ++finished;
    for (int u : users[i]) skip(u);
  };
  for (int i = 0; i < n; ++i)
    if (waiting[i] == 0) queue.push_back(i);

  auto worker = [&]() {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return !queue.empty() || finished == n || (stop && running == 0); });
      if (finished == n || (stop && queue.empty() && running == 0)) break;
      if (queue.empty()) continue;
      int i = queue.front();
      queue.pop_front();
      if (state[i] != NodeState::kPending) continue;
      if (stop || (ready && !ready(i))) {
        skip(i);
        cv.notify_all();
        continue;
      }
      ++running;
      lock.unlock();
      bool ok = task(i);
      lock.lock();
      --running;
      ++finished;
      state[i] = ok ? NodeState::kSucceeded : NodeState::kFailed;
      if (ok) {
        for (int u : users[i])
          if (--waiting[u] == 0) queue.push_back(u);
      } else {
        for (int u : users[i]) skip(u);
        if (!m_keep_going) stop = true;
      }
      cv.notify_all();
    }
    cv.notify_all();
  };

  std::vector<std::thread> threads;
  int nthreads = std::min(m_jobs, std::max(n, 1));
  for (int t = 0; t < nthreads; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  // Anything never reached (after a stop) counts as skipped.
  for (auto& s : state)
    if (s == NodeState::kPending) s = NodeState::kSkipped;
  return state;
}

}  // namespace mb
