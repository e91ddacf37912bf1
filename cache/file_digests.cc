// FileDigestCache. The state file format is in docs/cache-format.md
// ("File digest state"); encode_locked() and decode() are its only writers
// and readers.
#include "cache/file_digests.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>

#include "base/parallel.h"

namespace mb {
namespace {

constexpr char kStateMagic[8] = {'M', 'B', 'F', 'D', 'I', 'G', 'S', 'T'};
constexpr uint32_t kStateVersion = 1;
constexpr size_t kHeaderBytes = 8 + 4 + 4 + 8;
constexpr size_t kTrailerBytes = 32;
constexpr size_t kEntryFixedBytes = 4 + 6 * 8 + 32;  // path length, six integers, digest
// A file that keeps changing while we read it is not hashed forever.
constexpr int kMaxHashAttempts = 3;

int64_t wall_clock_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Bounds-checked little-endian reader over the state file.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : m_bytes(bytes) {}
  bool get(uint64_t* v, int n) {
    if (remaining() < static_cast<size_t>(n)) return false;
    *v = 0;
    for (int i = 0; i < n; ++i) *v |= uint64_t{static_cast<uint8_t>(m_bytes[m_pos + i])} << (8 * i);
    m_pos += n;
    return true;
  }
  bool get_i64(int64_t* v) {
    uint64_t u;
    if (!get(&u, 8)) return false;
    *v = static_cast<int64_t>(u);
    return true;
  }
  bool get_bytes(size_t n, std::string_view* out) {
    if (remaining() < n) return false;
    *out = m_bytes.substr(m_pos, n);
    m_pos += n;
    return true;
  }
  size_t remaining() const { return m_bytes.size() - m_pos; }

 private:
  std::string_view m_bytes;
  size_t m_pos = 0;
};

Error corrupt(const fs::path& path, const char* why) { return make_error(Errc::kCorrupt, path.string(), "{}", why); }

}  // namespace

struct FileDigestCache::Progress {
  // A constructor, not aggregate paren-init, which clang 14 lacks.
  Progress(Reporter& r, std::string l, uint64_t t) : reporter(r), label(std::move(l)), total(t) {}
  Reporter& reporter;
  std::string label;  // "hash base-4bit"
  uint64_t total = 0;
  std::atomic<uint64_t> done{0};
  std::mutex mu;
  uint64_t reported = 0;  // guarded by mu

  // Adds `n` bytes; reports when the count crosses a multiple of
  // kProgressBytes, and when all are done.
  // Reports happen under `mu` so the bar never moves backwards, but the
  // common case (no report due) takes no lock.
  void add(uint64_t n) {
    uint64_t now = done.fetch_add(n) + n;
    if (now < total && now % kProgressBytes >= n && n < kProgressBytes) return;  // no boundary crossed
    std::lock_guard<std::mutex> lock(mu);
    now = std::min(done.load(), total);
    if (now > reported && (now / kProgressBytes > reported / kProgressBytes || now == total)) {
      reported = now;
      reporter.progress(label, now, total, "bytes");
    }
  }
};

FileDigestCache::FileDigestCache(FileSystem& fs, fs::path state_file, Reporter& reporter)
    : m_fs(fs), m_state_file(std::move(state_file)), m_reporter(reporter), m_clock(wall_clock_ns) {}

void FileDigestCache::set_clock_for_testing(std::function<int64_t()> now_ns) {
  std::lock_guard<std::mutex> lock(m_mu);
  m_clock = std::move(now_ns);
}

bool FileDigestCache::same_fingerprint(const Entry& e, const FileStat& st) {
  return e.dev == st.dev && e.ino == st.ino && e.size == st.size && e.mtime_ns == st.mtime_ns &&
         e.ctime_ns == st.ctime_ns;
}

void FileDigestCache::load() {
  auto bytes = m_fs.read_file(m_state_file);
  std::unordered_map<std::string, Entry> entries;
  bool rewrite = false;
  if (bytes.ok()) {
    Status st = decode(*bytes, &entries);
    if (!st.ok()) {
      // Replace a damaged file at the next save() even if nothing is hashed,
      // so the warning is not repeated forever; a newer version's file is
      // left alone until we have something of our own to write.
      rewrite = st.error().code == Errc::kCorrupt;
      m_reporter.warn(
          fmt::format("ignoring the file digest state ({}); files will be re-hashed", st.error().to_string()));
      entries.clear();
    }
  } else if (bytes.error().code != Errc::kNotFound) {
    m_reporter.warn(
        fmt::format("cannot read the file digest state ({}); files will be re-hashed", bytes.error().to_string()));
  }
  std::lock_guard<std::mutex> lock(m_mu);
  m_entries = std::move(entries);
  m_used.clear();
  m_dirty = rewrite;
}

Status FileDigestCache::decode(std::string_view bytes, std::unordered_map<std::string, Entry>* out) const {
  if (bytes.size() < kHeaderBytes + kTrailerBytes) return corrupt(m_state_file, "truncated header");
  std::string_view body = bytes.substr(0, bytes.size() - kTrailerBytes);
  Digest want = digest_string(body);
  if (std::memcmp(want.bytes.data(), bytes.data() + body.size(), kTrailerBytes) != 0) {
    return corrupt(m_state_file, "checksum mismatch");
  }
  Reader r(body);
  std::string_view magic;
  uint64_t version = 0, flags = 0, count = 0;
  r.get_bytes(8, &magic);
  r.get(&version, 4);
  r.get(&flags, 4);
  r.get(&count, 8);
  if (magic != std::string_view(kStateMagic, 8)) return corrupt(m_state_file, "not a file digest state file");
  if (version != kStateVersion) {
    return make_error(Errc::kUnsupported, m_state_file.string(), "state version {} (this modelbuild reads {})", version,
                      kStateVersion);
  }
  if (flags != 0) return corrupt(m_state_file, "unknown flags");
  if (count > r.remaining() / kEntryFixedBytes) return corrupt(m_state_file, "entry count exceeds file size");
  out->reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t path_len = 0;
    std::string_view path, digest;
    Entry e;
    if (!r.get(&path_len, 4) || !r.get_bytes(path_len, &path) || !r.get(&e.dev, 8) || !r.get(&e.ino, 8) ||
        !r.get(&e.size, 8) || !r.get_i64(&e.mtime_ns) || !r.get_i64(&e.ctime_ns) || !r.get_i64(&e.hashed_at_ns) ||
        !r.get_bytes(32, &digest)) {
      return corrupt(m_state_file, "truncated entry");
    }
    std::memcpy(e.digest.bytes.data(), digest.data(), 32);
    (*out)[std::string(path)] = e;
  }
  if (r.remaining() != 0) return corrupt(m_state_file, "trailing bytes");
  return {};
}

std::string FileDigestCache::encode_locked() const {
  // Sorted so the file is deterministic (handy when debugging with xxd).
  std::vector<const std::pair<const std::string, Entry>*> items;
  items.reserve(m_entries.size());
  for (const auto& item : m_entries) items.push_back(&item);
  std::sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
  std::string out(kStateMagic, 8);
  put_le(out, kStateVersion, 4);
  put_le(out, 0, 4);
  put_le(out, items.size(), 8);
  for (const auto* item : items) {
    const Entry& e = item->second;
    put_le(out, item->first.size(), 4);
    out += item->first;
    put_le(out, e.dev, 8);
    put_le(out, e.ino, 8);
    put_le(out, e.size, 8);
    put_le(out, static_cast<uint64_t>(e.mtime_ns), 8);
    put_le(out, static_cast<uint64_t>(e.ctime_ns), 8);
    put_le(out, static_cast<uint64_t>(e.hashed_at_ns), 8);
    out.append(reinterpret_cast<const char*>(e.digest.bytes.data()), 32);
  }
  Digest sum = digest_string(out);
  out.append(reinterpret_cast<const char*>(sum.bytes.data()), 32);
  return out;
}

Status FileDigestCache::save() {
  std::string bytes;
  {
    std::lock_guard<std::mutex> lock(m_mu);
    if (!m_dirty) return {};
    // Forget files nobody asked about for a long time (deleted, renamed), so
    // the state file does not grow without bound. Only done when the file is
    // being rewritten anyway, so the no-op path never writes.
    int64_t cutoff = m_clock() - kForgetAfterNs;
    std::erase_if(m_entries,
                  [&](const auto& item) { return item.second.hashed_at_ns < cutoff && m_used.count(item.first) == 0; });
    bytes = encode_locked();
  }
  MB_TRY(m_fs.create_dirs(m_state_file.parent_path()));
  MB_TRY(write_file_atomic(m_fs, m_state_file, std::string_view(bytes)));
  std::lock_guard<std::mutex> lock(m_mu);
  m_dirty = false;
  return {};
}

std::optional<FileDigestCache::Entry> FileDigestCache::reusable_locked(const std::string& key, const FileStat& st) {
  m_used.insert(key);
  auto it = m_entries.find(key);
  if (it == m_entries.end() || !same_fingerprint(it->second, st)) return std::nullopt;
  // A racily clean entry is re-verified by the next process (its persisted
  // entry stays racy), but not again within this one: the steps of one build
  // often read the same input several times, and a multi-GB adapter must not
  // be hashed once per reader.
  if (it->second.mtime_ns + kRacyMarginNs > it->second.hashed_at_ns && !m_hashed_here.count(key)) {
    return std::nullopt;
  }
  ++m_stats.files_reused;
  return it->second;
}

Result<FileDigestCache::Entry> FileDigestCache::entry_for(const fs::path& abs, Progress* progress) {
  std::string key = abs.string();
  MB_ASSIGN(FileStat st, m_fs.stat(abs));
  if (!st.is_regular) return make_error(Errc::kInvalidInput, key, "not a regular file");
  std::function<int64_t()> clock;
  {
    std::lock_guard<std::mutex> lock(m_mu);
    if (auto e = reusable_locked(key, st)) return *e;
    clock = m_clock;
  }
  for (int attempt = 0; attempt < kMaxHashAttempts; ++attempt) {
    Entry e;
    e.hashed_at_ns = clock();  // before reading: a write during hashing makes the entry racy
    uint64_t counted = 0;
    std::function<void(uint64_t)> on_bytes;
    if (progress) {
      on_bytes = [&](uint64_t hashed) {
        progress->add(hashed - counted);
        counted = hashed;
      };
    }
    MB_ASSIGN(e.digest, digest_file(m_fs, abs, on_bytes));
    MB_ASSIGN(FileStat after, m_fs.stat(abs));
    e.dev = after.dev;
    e.ino = after.ino;
    e.size = after.size;
    e.mtime_ns = after.mtime_ns;
    e.ctime_ns = after.ctime_ns;
    bool stable = same_fingerprint(e, st);
    std::lock_guard<std::mutex> lock(m_mu);
    ++m_stats.files_hashed;
    m_stats.bytes_hashed += after.size;
    m_hashed.push_back(abs);
    if (stable) {
      m_entries[key] = e;
      m_hashed_here.insert(key);
      m_dirty = true;
      return e;
    }
    st = after;  // it changed while we read it: try again
  }
  return make_error(Errc::kIo, key, "file kept changing while it was being hashed");
}

Result<Digest> FileDigestCache::digest_of(const fs::path& path) {
  fs::path abs = fs::absolute(path).lexically_normal();
  // Only a file big enough to take a while gets a progress bar; stat is
  // cheap next to hashing and the no-op path inside entry_for stats anyway.
  std::optional<Progress> progress;
  if (auto st = m_fs.stat(abs); st.ok() && st->size >= kProgressBytes)
    progress.emplace(m_reporter, "hash " + abs.filename().string(), st->size);
  MB_ASSIGN(Entry e, entry_for(abs, progress ? &*progress : nullptr));
  return e.digest;
}

Status FileDigestCache::walk(const fs::path& dir, const std::string& prefix,
                             std::vector<std::pair<uint64_t, uint64_t>>* ancestors,
                             std::vector<WalkedFile>* files) const {
  MB_ASSIGN(auto names, m_fs.list_dir(dir));
  for (const std::string& name : names) {
    if (name == kMaterializedMarker) continue;
    fs::path child = dir / name;
    std::string rel = prefix.empty() ? name : prefix + "/" + name;
    MB_ASSIGN(FileStat st, m_fs.stat(child));  // follows symlinks; a dangling one is an error
    if (st.is_regular) {
      files->push_back(WalkedFile{rel, child, st});
    } else if (st.is_dir) {
      std::pair<uint64_t, uint64_t> id{st.dev, st.ino};
      if (std::find(ancestors->begin(), ancestors->end(), id) != ancestors->end()) {
        return make_error(Errc::kInvalidInput, child.string(), "symlink cycle in an input tree");
      }
      ancestors->push_back(id);
      MB_TRY(walk(child, rel, ancestors, files));
      ancestors->pop_back();
    } else {
      return make_error(Errc::kInvalidInput, child.string(), "neither a regular file nor a directory");
    }
  }
  return {};
}

Result<std::vector<TreeEntry>> FileDigestCache::tree_entries(const fs::path& dir, int threads) {
  fs::path abs = fs::absolute(dir).lexically_normal();
  MB_ASSIGN(FileStat root, m_fs.stat(abs));
  if (!root.is_dir) return make_error(Errc::kInvalidInput, abs.string(), "not a directory");
  std::vector<WalkedFile> files;
  std::vector<std::pair<uint64_t, uint64_t>> ancestors{{root.dev, root.ino}};
  MB_TRY(walk(abs, "", &ancestors, &files));

  // The no-op path first: stat and look up every file on this thread, so an
  // unchanged tree costs no thread start-up; only changed files are hashed,
  // in parallel.
  std::vector<std::optional<Result<Entry>>> results(files.size());
  std::vector<size_t> to_hash;
  {
    std::lock_guard<std::mutex> lock(m_mu);
    for (size_t i = 0; i < files.size(); ++i) {
      // The walk's stat is the fingerprint: no second stat on the no-op path.
      if (auto cached = reusable_locked(files[i].path.string(), files[i].stat)) {
        results[i] = *cached;
      } else {
        to_hash.push_back(i);
      }
    }
  }
  uint64_t bytes_to_hash = 0;
  for (size_t i : to_hash) bytes_to_hash += files[i].stat.size;
  Progress progress(m_reporter, "hash " + abs.filename().string(), bytes_to_hash);
  // The first error stops the walk; it is returned below in file order.
  const Status walked =
      parallel_for(static_cast<int64_t>(to_hash.size()), std::max(threads, 1), [&](int64_t k) -> Status {
        const size_t i = to_hash[static_cast<size_t>(k)];
        results[i] = entry_for(files[i].path, &progress);
        return results[i]->ok() ? Status() : results[i]->error();
      });

  std::vector<TreeEntry> out;
  out.reserve(files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    if (results[i].has_value() && !results[i]->ok()) return results[i]->error();
  }
  if (!walked.ok()) return walked.error();
  for (size_t i = 0; i < files.size(); ++i) {
    if (!results[i].has_value()) return make_error(Errc::kInternal, files[i].path.string(), "file was not hashed");
    const Entry& e = results[i]->value();
    out.push_back(TreeEntry{files[i].rel, e.digest, e.size});
  }
  std::sort(out.begin(), out.end(), [](const TreeEntry& a, const TreeEntry& b) { return a.path < b.path; });
  return out;
}

Result<Digest> FileDigestCache::digest_of_tree(const fs::path& path, int threads) {
  fs::path abs = fs::absolute(path).lexically_normal();
  MB_ASSIGN(FileStat st, m_fs.stat(abs));
  if (st.is_regular) return digest_of(abs);
  MB_ASSIGN(auto entries, tree_entries(abs, threads));
  return tree_digest(entries);
}

FileDigestStats FileDigestCache::stats() const {
  std::lock_guard<std::mutex> lock(m_mu);
  return m_stats;
}

std::vector<fs::path> FileDigestCache::hashed_paths() const {
  std::lock_guard<std::mutex> lock(m_mu);
  return m_hashed;
}

size_t FileDigestCache::size() const {
  std::lock_guard<std::mutex> lock(m_mu);
  return m_entries.size();
}

}  // namespace mb
