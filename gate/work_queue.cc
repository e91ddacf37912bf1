#include "gate/work_queue.h"

#include <spdlog/spdlog.h>

#include "base/parallel.h"

namespace mb::gate {

WorkQueue::WorkQueue() : m_thread([this] { run(); }) {}

WorkQueue::~WorkQueue() {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_stopping = true;
  }
  m_cv.notify_all();
  m_thread.join();
}

void WorkQueue::post(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_jobs.push_back(std::move(job));
  }
  m_cv.notify_one();
}

void WorkQueue::run() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(m_mutex);
      m_cv.wait(lock, [&] { return m_stopping || !m_jobs.empty(); });
      if (m_jobs.empty()) return;  // stopping, and nothing left
      job = std::move(m_jobs.front());
      m_jobs.pop_front();
    }
    Status s = catch_all("serve", [&] {
      job();
      return Status();
    });
    if (!s.ok()) spdlog::error("a generation failed: {}", s.error().to_string());
  }
}

}  // namespace mb::gate
