#include "cache/sweep.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <functional>
#include <memory>

#include "cache/cache.h"

namespace mb {
namespace {

// One sweep: who counts as the owner of a leftover, and what was removed.
class Sweep {
 public:
  Sweep(Cache& cache, SweepOwner owner) : m_cache(cache), m_fs(cache.fs()), m_owner(owner) {}

  bool owned(long pid) const { return m_owner == SweepOwner::kSelf ? pid == ::getpid() : !pid_alive(pid); }

  // Removes `path` when nobody holds `lock` (an empty path: no lock guards
  // it). Our own leftovers are removed without asking: our threads are done.
  void remove(const fs::path& path, const fs::path& lock) {
    std::unique_ptr<FileLock> held;
    if (!lock.empty() && m_owner == SweepOwner::kDead) {
      auto l = m_fs.try_lock(lock);
      if (!l.ok() || *l == nullptr) return;  // a live holder, or no way to know
      held = std::move(l).value();
    }
    if (m_fs.remove_all(path).ok()) ++m_removed;
  }

  // Every "<base>.tmp.<pid>.<n>" in `dir` an owner left; `lock_for` names
  // the lock guarding one (or an empty path).
  void temp_names(const fs::path& dir, const std::function<fs::path(const std::string& base)>& lock_for) {
    for (const std::string& name : names(dir)) {
      std::string base;
      long pid = 0;
      if (parse_temp_name(name, &base, &pid) && owned(pid)) remove(dir / name, lock_for ? lock_for(base) : fs::path());
    }
  }

  // Staging directories "<key>.<pid>.<n>", each guarded by its step lock.
  void staging(const fs::path& dir) {
    for (const std::string& name : names(dir)) {
      Digest key;
      long pid = 0;
      if (parse_staging_name(name, &key, &pid) && owned(pid))
        remove(dir / name, m_cache.root() / "locks" / (key.hex() + ".lock"));
    }
  }

  std::vector<std::string> names(const fs::path& dir) const {
    auto n = m_fs.list_dir(dir);
    return n.ok() ? *n : std::vector<std::string>{};
  }

  uint64_t removed() const { return m_removed; }

 private:
  Cache& m_cache;
  FileSystem& m_fs;
  SweepOwner m_owner;
  uint64_t m_removed = 0;
};

}  // namespace

bool pid_alive(long pid) { return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

bool parse_temp_name(const std::string& name, std::string* base, long* pid) {
  const size_t at = name.rfind(".tmp.");
  if (at == std::string::npos || at == 0) return false;
  const char* begin = name.data() + at + 5;
  const char* end = name.data() + name.size();
  auto [ptr, ec] = std::from_chars(begin, end, *pid);
  if (ec != std::errc() || ptr == begin || ptr == end || *ptr != '.' || *pid <= 0) return false;
  *base = name.substr(0, at);
  return true;
}

uint64_t sweep_temporaries(Cache& cache, const fs::path& build_dir, SweepOwner owner) {
  Sweep sweep(cache, owner);
  const fs::path root = cache.root();
  if (!cache.read_only()) {
    sweep.staging(root / "tmp");
    sweep.temp_names(root / "tmp", nullptr);  // gc's clock stamps
    sweep.temp_names(root / "views",
                     [&](const std::string& digest) { return root / "locks" / ("view-" + digest + ".lock"); });
    sweep.temp_names(root / "state", nullptr);
    for (const std::string& shard : sweep.names(root / "ac")) sweep.temp_names(root / "ac" / shard, nullptr);
  }
  if (!build_dir.empty())
    sweep.temp_names(build_dir, [&](const std::string& base) -> fs::path {
      // build/TARGET.tmp.* is placed under the target's lock; a report's
      // temp file is written without one.
      if (base.size() > 12 && base.ends_with(".report.json")) return {};
      return build_dir / ("." + base + ".lock");
    });
  return sweep.removed();
}

}  // namespace mb
