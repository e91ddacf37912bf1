// Cache::gc() and Cache::verify_all(); policy in docs/cache-format.md
// ("Garbage collection").
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <map>
#include <optional>
#include <set>

#include "base/parallel.h"
#include "cache/cache.h"

namespace mb {
namespace {

constexpr int64_t kNsPerS = 1000000000;

bool pid_alive(long pid) { return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM; }

int64_t wall_clock_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The pid in a write_file_atomic/temp_path_for name "<name>.tmp.<pid>.<n>".
bool parse_temp_pid(const std::string& name, long* pid) {
  size_t at = name.rfind(".tmp.");
  if (at == std::string::npos) return false;
  const char* begin = name.data() + at + 5;
  const char* end = name.data() + name.size();
  auto [ptr, ec] = std::from_chars(begin, end, *pid);
  return ec == std::errc() && ptr != begin && *ptr == '.';
}

// Blob digests an entry of a newer format names, if its outputs look familiar.
bool lenient_blobs(const FileSystem& fs, const fs::path& path, std::vector<Digest>* out) {
  auto text = fs.read_file(path);
  if (!text.ok()) return false;
  auto json = nlohmann::json::parse(*text, nullptr, false);
  if (!json.is_object() || !json.contains("outputs") || !json["outputs"].is_array()) return false;
  for (const auto& o : json["outputs"]) {
    if (!o.is_object() || !o.contains("digest") || !o["digest"].is_string()) return false;
    auto d = Digest::from_hex(o["digest"].get<std::string>());
    if (!d.ok()) return false;
    out->push_back(*d);
  }
  return true;
}

}  // namespace

uint64_t Cache::remove_stale_temps(const GcOptions& options) {
  uint64_t removed = 0;
  int64_t now = wall_clock_ns();
  int64_t max_age = options.tmp_max_age_seconds * kNsPerS;
  // Staging directories: <key>.<pid>.<n>.
  auto names = m_fs.list_dir(m_root / "tmp");
  for (const std::string& name : names.ok() ? *names : std::vector<std::string>{}) {
    fs::path path = m_root / "tmp" / name;
    auto st = m_fs.lstat(path);
    if (!st.ok()) continue;
    bool old = now - st->mtime_ns > max_age;
    Digest key;
    long pid = 0;
    bool stale = false;
    std::unique_ptr<FileLock> lock;
    if (parse_staging_name(name, &key, &pid)) {
      if (!pid_alive(pid)) {
        stale = true;
      } else if (old) {
        // A live owner (or a reused pid) that has not held the step lock: an
        // abandoned directory. Keep the lock while deleting.
        auto l = try_lock_step(key);
        stale = l.ok() && *l != nullptr;
        if (stale) lock = std::move(l).value();
      }
    } else {
      stale = old;
    }
    if (stale && m_fs.remove_all(path).ok()) ++removed;
  }
  // Temp files of interrupted atomic writes next to entries and state.
  std::vector<fs::path> dirs{m_root / "state"};
  auto shards = m_fs.list_dir(m_root / "ac");
  for (const std::string& s : shards.ok() ? *shards : std::vector<std::string>{}) dirs.push_back(m_root / "ac" / s);
  for (const fs::path& dir : dirs) {
    auto files = m_fs.list_dir(dir);
    for (const std::string& name : files.ok() ? *files : std::vector<std::string>{}) {
      long pid = 0;
      if (!parse_temp_pid(name, &pid)) continue;
      auto st = m_fs.lstat(dir / name);
      if (!st.ok()) continue;
      if ((!pid_alive(pid) || now - st->mtime_ns > max_age) && m_fs.remove(dir / name).ok()) ++removed;
    }
  }
  return removed;
}

uint64_t Cache::remove_unused_views(const std::set<Digest>& keep, int64_t clock_ns, bool builds_in_flight,
                                    const GcOptions& options) {
  uint64_t removed = 0;
  int64_t now = wall_clock_ns();
  auto names = m_fs.list_dir(m_root / "views");
  for (const std::string& name : names.ok() ? *names : std::vector<std::string>{}) {
    fs::path path = m_root / "views" / name;
    auto st = m_fs.lstat(path);
    if (!st.ok()) continue;
    auto digest = Digest::from_hex(name);
    bool stale;
    if (digest.ok()) {
      // A view made after gc started, or during a build in flight, may be
      // the input of a step whose entry we did not see.
      stale = keep.count(*digest) == 0 && st->ctime_ns < clock_ns &&
              !(builds_in_flight && clock_ns - st->ctime_ns < options.blob_grace_seconds * kNsPerS);
    } else {
      long pid = 0;  // materialize()'s temp siblings
      stale =
          parse_temp_pid(name, &pid) && (!pid_alive(pid) || now - st->mtime_ns > options.tmp_max_age_seconds * kNsPerS);
    }
    if (stale && m_fs.remove_all(path).ok()) ++removed;
  }
  return removed;
}

Result<GcStats> Cache::gc(uint64_t max_bytes, const std::vector<Digest>& pinned_keys, const GcOptions& options) {
  GcStats stats;
  // "Now" on the filesystem's own clock and granularity: blobs changed at or
  // after this instant may belong to a commit racing with us.
  fs::path stamp = m_root / "tmp" / fmt::format(".gc-clock.{}", ::getpid());
  MB_TRY(write_file_atomic(m_fs, stamp, std::string_view("")));
  MB_ASSIGN(FileStat stamp_st, m_fs.stat(stamp));
  (void)m_fs.remove(stamp);
  int64_t clock_ns = stamp_st.ctime_ns;
  bool builds_in_flight = false;
  auto tmp_names = m_fs.list_dir(m_root / "tmp");
  for (const std::string& name : tmp_names.ok() ? *tmp_names : std::vector<std::string>{}) {
    Digest key;
    long pid = 0;
    if (parse_staging_name(name, &key, &pid) && pid_alive(pid)) builds_in_flight = true;
  }

  std::set<Digest> pinned(pinned_keys.begin(), pinned_keys.end());
  struct Live {
    Digest key;
    int64_t mtime_ns = 0;
    std::vector<Digest> blobs;  // distinct
    bool pinned = false;
    std::optional<Digest> output_digest;
    bool removed = false;
  };
  std::vector<Live> live;
  bool unknown_refs = false;
  MB_ASSIGN(auto keys, m_ac.list());
  for (const Digest& key : keys) {
    fs::path path = m_ac.entry_path(key);
    auto st = m_fs.stat(path);
    if (!st.ok()) continue;
    Live l{key, st->mtime_ns, {}, pinned.count(key) != 0, std::nullopt, false};
    auto entry = m_ac.read(key);
    if (entry.ok()) {
      for (const OutputFile& o : entry->outputs) l.blobs.push_back(o.digest);
      l.output_digest = entry->output_digest;
    } else if (entry.error().code == Errc::kUnsupported) {
      // A newer modelbuild's entry: not ours to evict; protect its blobs.
      l.pinned = true;
      if (!lenient_blobs(m_fs, path, &l.blobs)) unknown_refs = true;
    } else if (entry.error().code == Errc::kNotFound) {
      continue;
    } else {
      if (m_fs.remove(path).ok()) ++stats.corrupt_entries_removed;
      continue;
    }
    std::sort(l.blobs.begin(), l.blobs.end());
    l.blobs.erase(std::unique(l.blobs.begin(), l.blobs.end()), l.blobs.end());
    live.push_back(std::move(l));
  }

  struct BlobInfo {
    uint64_t size = 0;
    int refs = 0;
  };
  std::map<Digest, BlobInfo> blobs;
  for (const Live& l : live) {
    for (const Digest& d : l.blobs) ++blobs[d].refs;
  }
  uint64_t total = 0;
  for (auto& [digest, info] : blobs) {
    auto st = m_fs.stat(m_cas.blob_path(digest));
    info.size = st.ok() ? st->size : 0;
    total += info.size;
  }

  std::vector<size_t> order;
  for (size_t i = 0; i < live.size(); ++i) {
    if (!live[i].pinned) order.push_back(i);
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::tie(live[a].mtime_ns, live[a].key) < std::tie(live[b].mtime_ns, live[b].key);
  });
  stats.entries_kept = live.size();
  for (size_t i : order) {
    if (total <= max_bytes) break;
    if (!m_ac.remove(live[i].key).ok()) continue;
    live[i].removed = true;
    ++stats.entries_removed;
    --stats.entries_kept;
    for (const Digest& d : live[i].blobs) {
      if (--blobs[d].refs == 0) total -= blobs[d].size;
    }
  }
  stats.bytes_kept = total;

  // Views first: their hard links would keep the blobs' bytes on disk.
  std::set<Digest> produced;
  bool unknown_outputs = false;
  for (const Live& l : live) {
    if (l.removed) continue;
    if (l.output_digest) {
      produced.insert(*l.output_digest);
    } else {
      unknown_outputs = true;  // a newer format's entry: keep every view
    }
  }
  if (!unknown_outputs) stats.views_removed = remove_unused_views(produced, clock_ns, builds_in_flight, options);

  if (unknown_refs) {
    m_reporter.warn("the cache holds entries from a newer modelbuild; unreferenced blobs were kept");
  } else {
    MB_ASSIGN(auto all, m_cas.list());
    int64_t grace = options.blob_grace_seconds * kNsPerS;
    for (const Digest& d : all) {
      auto it = blobs.find(d);
      if (it != blobs.end() && it->second.refs > 0) continue;
      fs::path path = m_cas.blob_path(d);
      auto st = m_fs.lstat(path);
      if (!st.ok()) continue;
      if (st->ctime_ns >= clock_ns) continue;                             // stored after gc started
      if (builds_in_flight && clock_ns - st->ctime_ns < grace) continue;  // maybe a commit in progress
      if (m_fs.remove(path).ok()) {
        ++stats.blobs_removed;
        stats.bytes_removed += st->size;
      }
    }
  }
  stats.tmp_removed = remove_stale_temps(options);
  return stats;
}

Result<VerifyStats> Cache::verify_all(int threads) {
  MB_ASSIGN(auto blobs, m_cas.list());
  std::atomic<uint64_t> checked{0}, bytes{0}, corrupt{0}, unreadable{0};
  MB_TRY(parallel_for(static_cast<int64_t>(blobs.size()), std::max(threads, 1), [&](int64_t i) -> Status {
    const Digest& blob = blobs[static_cast<size_t>(i)];
    auto st = m_fs.stat(m_cas.blob_path(blob));
    Status ok = m_cas.verify(blob);
    ++checked;
    if (st.ok()) bytes += st->size;
    if (ok.ok()) return {};
    if (ok.error().code == Errc::kCorrupt) {
      ++corrupt;
      m_reporter.warn(fmt::format("deleted corrupt blob {}", ok.error().to_string()));
    } else if (ok.error().code != Errc::kNotFound) {  // gone meanwhile is fine
      ++unreadable;
      m_reporter.warn(fmt::format("cannot verify blob: {}", ok.error().to_string()));
    }
    return {};
  }));
  VerifyStats stats;
  stats.blobs_checked = checked;
  stats.bytes_checked = bytes;
  stats.corrupt_removed = corrupt;
  stats.unreadable = unreadable;
  return stats;
}

}  // namespace mb
