#pragma once
// WorkQueue: one thread that runs posted jobs one at a time, in the order
// they were posted. `modelbuild serve` runs every generation on it, so the
// engine (one KV cache, not thread-safe) serves its clients first come,
// first served, and a slow client never holds the engine: its reply goes out
// from the HTTP thread while the next generation runs.
//
// post() may be called from any thread. The destructor runs the jobs still
// queued, then joins the thread. A job must not throw (one that does is
// caught and logged, and the queue goes on).
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace mb::gate {

class WorkQueue {
 public:
  WorkQueue();
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  void post(std::function<void()> job);

 private:
  void run();

  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::deque<std::function<void()>> m_jobs;
  bool m_stopping = false;
  std::thread m_thread;  // last: started once the rest is constructed
};

}  // namespace mb::gate
