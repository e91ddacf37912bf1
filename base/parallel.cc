#include "base/parallel.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <new>
#include <thread>
#include <vector>

namespace mb {

int core_count() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

int resolve_threads(int threads) { return threads > 0 ? threads : core_count(); }

Status catch_all(const std::string& where, const std::function<Status()>& fn) {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return make_error(Errc::kInternal, where, "out of memory");
  } catch (const std::exception& e) {
    return make_error(Errc::kInternal, where, "unexpected error: {}", e.what());
  } catch (...) {
    return make_error(Errc::kInternal, where, "unexpected error of unknown type");
  }
}

Status parallel_for(int64_t n, int threads, const std::function<Status(int64_t)>& fn) {
  if (n <= 0) return {};
  std::vector<Status> status(static_cast<size_t>(n));
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  auto worker = [&] {
    for (int64_t i = next++; i < n && !failed; i = next++) {
      Status& s = status[static_cast<size_t>(i)];
      s = catch_all("", [&] { return fn(i); });
      if (!s.ok()) failed = true;
    }
  };
  const int64_t t = std::min<int64_t>(resolve_threads(threads), n);
  std::vector<std::thread> workers;
  workers.reserve(static_cast<size_t>(t - 1));
  for (int64_t w = 1; w < t; ++w) workers.emplace_back(worker);
  worker();
  for (std::thread& th : workers) th.join();
  for (Status& s : status)
    if (!s.ok()) return s;
  return {};
}

}  // namespace mb
