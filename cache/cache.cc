// Cache: layout, VERSION, step locks, staging and commit.
#include "cache/cache.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <set>

namespace mb {
namespace {

std::string trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.remove_suffix(1);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return std::string(s);
}

struct StagedFile {
  std::string rel;
  fs::path path;
  uint64_t size = 0;
  bool executable = false;
  Digest digest;
};

Status collect_outputs(const FileSystem& fs, const fs::path& dir, const std::string& prefix,
                       std::vector<StagedFile>* out) {
  MB_ASSIGN(auto names, fs.list_dir(dir));
  for (const std::string& name : names) {
    fs::path path = dir / name;
    std::string rel = prefix.empty() ? name : prefix + "/" + name;
    MB_ASSIGN(FileStat st, fs.lstat(path));
    if (st.is_dir) {
      MB_TRY(collect_outputs(fs, path, rel, out));
    } else if (st.is_regular) {
      out->push_back(StagedFile{rel, path, st.size, (st.mode & 0111) != 0, {}});
    } else {
      return make_error(Errc::kInvalidInput, path.string(),
                        "step output is a symlink or special file; outputs must be regular files");
    }
  }
  return {};
}

}  // namespace

Cache::Cache(FileSystem& fs, fs::path root, Reporter& reporter)
    : m_fs(fs),
      m_root(std::move(root)),
      m_reporter(reporter),
      m_cas(fs, m_root),
      m_ac(fs, m_root, m_cas, reporter),
      m_file_digests(fs, m_root / "state" / "file-digests", reporter) {}

Status Cache::check_version() {
  fs::path path = m_root / "VERSION";
  auto text = m_fs.read_file(path);
  if (!text.ok()) {
    if (text.error().code != Errc::kNotFound) return text.error();
    // Written last by init(), so a half-initialized cache just gets redone.
    return {};
  }
  std::string value = trim(*text);
  int version = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), version);
  if (ec != std::errc() || ptr != value.data() + value.size() || version < 1) {
    return make_error(Errc::kCorrupt, path.string(), "not a modelbuild cache version: '{}'", value);
  }
  if (version > kFormatVersion) {
    return make_error(Errc::kUnsupported, path.string(),
                      "cache format version {} is newer than this modelbuild supports ({}); "
                      "upgrade modelbuild or use another cache directory",
                      version, kFormatVersion);
  }
  return {};
}

Status Cache::init() {
  MB_TRY(m_fs.create_dirs(m_root));
  MB_TRY(check_version());
  for (const char* sub : {"cas", "ac", "tmp", "locks", "state"}) MB_TRY(m_fs.create_dirs(m_root / sub));
  fs::path version = m_root / "VERSION";
  auto existing = m_fs.stat(version);
  if (!existing.ok() && existing.error().code == Errc::kNotFound) {
    MB_TRY(write_file_atomic(m_fs, version, fmt::format("{}\n", kFormatVersion)));
  }
  m_file_digests.load();
  return {};
}

Status Cache::save_state() { return m_file_digests.save(); }

bool Cache::read_only() const { return ::access(m_root.c_str(), W_OK) != 0 && (errno == EROFS || errno == EACCES); }

fs::path Cache::lock_path(const Digest& key) const { return m_root / "locks" / (key.hex() + ".lock"); }

Result<std::unique_ptr<FileLock>> Cache::lock_step(const Digest& key) { return m_fs.lock(lock_path(key)); }

Result<std::unique_ptr<FileLock>> Cache::try_lock_step(const Digest& key) { return m_fs.try_lock(lock_path(key)); }

Result<std::optional<ActionEntry>> Cache::lookup(const Digest& key) {
  MB_ASSIGN(auto entry, m_ac.lookup(key));
  if (entry || m_fallback == nullptr) return entry;
  return m_fallback->fetch(*this, key);
}

Result<fs::path> Cache::view(const ActionEntry& entry) {
  const fs::path dir = view_dir(entry.output_digest);
  if (is_materialized(m_fs, m_cas, entry, dir)) return dir;
  MB_ASSIGN(auto lock, m_fs.lock(m_root / "locks" / ("view-" + entry.output_digest.hex() + ".lock")));
  MB_TRY(materialize(entry, dir).status());
  return dir;
}

Result<StagingDir> Cache::begin(const Digest& key) {
  static std::atomic<uint64_t> counter{0};
  fs::path dir = m_root / "tmp" / fmt::format("{}.{}.{}", key.hex(), ::getpid(), counter.fetch_add(1));
  // The name is unique to this process, so a leftover can only be our own
  // from an earlier failed attempt with the same counter: start afresh.
  MB_TRY(m_fs.remove_all(dir));
  MB_TRY(m_fs.create_dirs(dir));
  return StagingDir(m_fs, dir, key);
}

Result<ActionEntry> Cache::commit(StagingDir& staging, std::string_view kind, nlohmann::json report) {
  if (!staging.active()) {
    return make_error(Errc::kInternal, staging.dir().string(), "staging directory was already committed or abandoned");
  }
  std::vector<StagedFile> files;
  MB_TRY(collect_outputs(m_fs, staging.dir(), "", &files));

  // Hash everything before moving anything, so the blobs of this commit sit
  // unreferenced in the store (where gc could see them) only briefly.
  uint64_t total = 0, done = 0;
  for (const StagedFile& f : files) total += f.size;
  for (StagedFile& f : files) {
    MB_ASSIGN(f.digest, digest_file(m_fs, f.path));
    done += f.size;
    m_reporter.progress(std::string(kind), done, total, "bytes");
  }
  std::set<Digest> stored;
  std::set<fs::path> shards;
  for (const StagedFile& f : files) {
    if (stored.count(f.digest) != 0) {
      MB_TRY(m_fs.remove(f.path));  // same bytes as another output of this step
      continue;
    }
    MB_TRY(m_cas.ingest_hashed(f.path, f.digest, /*sync=*/false));
    stored.insert(f.digest);
    shards.insert(m_cas.blob_path(f.digest).parent_path());
  }
  // One fsync per shard directory, all before the entry that names the blobs.
  for (const fs::path& shard : shards) MB_TRY(m_fs.sync_dir(shard));

  ActionEntry entry;
  entry.key = staging.key();
  entry.kind = std::string(kind);
  entry.report = std::move(report);
  for (const StagedFile& f : files) {
    MB_ASSIGN(FileStat blob, m_fs.stat(m_cas.blob_path(f.digest)));
    if (blob.size != f.size) {
      return make_error(Errc::kIo, f.path.string(), "output changed while it was being stored");
    }
    entry.outputs.push_back(OutputFile{f.rel, f.digest, f.size, f.executable, blob.mtime_ns});
  }
  std::sort(entry.outputs.begin(), entry.outputs.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  entry.output_digest = tree_digest(tree_entries_of(entry.outputs));
  MB_TRY(m_ac.store(entry));  // the commit point
  if (m_fallback != nullptr) MB_TRY(m_fallback->publish(*this, entry));

  Status removed = staging.abandon();
  if (!removed.ok()) {
    m_reporter.warn(fmt::format("could not remove staging directory ({}); gc will", removed.error().to_string()));
  }
  return entry;
}

}  // namespace mb
