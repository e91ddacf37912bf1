#pragma once
// FileDigestCache: content digests of input files, remembered behind a stat
// fingerprint so an unchanged file is never re-read.
//
// The state lives in one small file (`<cache>/state/file-digests`) that is
// loaded whole at startup and rewritten atomically by save(). A file is
// re-hashed only when (dev, ino, size, mtime_ns, ctime_ns) changed, or when
// its entry is "racily clean": its mtime was within kRacyMarginNs of the
// moment hashing started, so a later write in the same timestamp tick could
// have left the fingerprint unchanged (git's rule). A truncated or corrupt
// state file is ignored with a warning and rebuilt: it is a cache, never a
// source of truth. Two processes saving at once: the last writer wins, which
// only costs the loser's entries a re-hash next time.
//
// Symlinks are followed, inside trees too (models are often symlinked from
// the Hugging Face cache); a symlink cycle is an error.
//
// Hashing reports its progress (bytes hashed of the bytes to hash) through
// the Reporter as "hash NAME" progress events, one per kProgressBytes, so
// a cold start on gigabytes shows a live bar; a no-op run reports nothing.
//
// Thread-safe: digest_of() may be called from several threads at once; the
// hashing itself runs outside the lock. The FileSystem and Reporter are
// borrowed and must outlive the cache.
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/fs.h"
#include "base/reporter.h"
#include "cache/digest.h"
#include "cache/tree_digest.h"

namespace mb {

struct FileDigestStats {
  uint64_t files_hashed = 0;
  uint64_t bytes_hashed = 0;
  uint64_t files_reused = 0;
};

class FileDigestCache {
 public:
  // Timestamps closer than this to the start of hashing are not trusted.
  // Covers coarse filesystem clocks (ext4 ticks, FAT's 2 s) and small skew.
  static constexpr int64_t kRacyMarginNs = int64_t{2} * 1000000000;
  // Entries neither used by this process nor hashed within this long are
  // dropped when the state file is next written.
  // Hashing progress is reported every this many bytes.
  static constexpr uint64_t kProgressBytes = uint64_t{64} << 20;
  static constexpr int64_t kForgetAfterNs = int64_t{30} * 24 * 3600 * 1000000000;

  FileDigestCache(FileSystem& fs, fs::path state_file, Reporter& reporter);

  // Loads the state file; a missing, truncated or corrupt file means an empty
  // cache (plus a warning when it existed).
  void load();
  // Writes the state file atomically if anything changed.
  Status save();

  // Digest of a regular file (symlinks followed). Paths are made absolute
  // before lookup.
  Result<Digest> digest_of(const fs::path& path);

  // Digest of a file or a directory. A directory's digest is tree_digest() of
  // the regular files below it (format in docs/cache-format.md). Files are
  // hashed in parallel with up to `threads` threads.
  Result<Digest> digest_of_tree(const fs::path& path, int threads);
  // The entries digest_of_tree() digests, sorted by path.
  Result<std::vector<TreeEntry>> tree_entries(const fs::path& dir, int threads);
  const FileSystem& fs() const { return m_fs; }

  FileDigestStats stats() const;
  // Paths hashed (not reused) since construction; for tests.
  std::vector<fs::path> hashed_paths() const;
  // Number of remembered files.
  size_t size() const;
  // Replaces the wall clock (ns since the epoch) used to time hashing.
  void set_clock_for_testing(std::function<int64_t()> now_ns);

 private:
  struct Entry {
    uint64_t dev = 0;
    uint64_t ino = 0;
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;
    int64_t hashed_at_ns = 0;  // wall clock when hashing started
    Digest digest;
  };
  static bool same_fingerprint(const Entry& e, const FileStat& st);

  // Bytes hashed so far of one digest_of()/tree_entries() call's work.
  struct Progress;
  // The entry for an absolute path, re-hashing when needed (and counting the
  // bytes read into `progress`, if any).
  Result<Entry> entry_for(const fs::path& abs, Progress* progress = nullptr);
  // The remembered entry if `st` shows it can be trusted without hashing.
  std::optional<Entry> reusable_locked(const std::string& key, const FileStat& st);
  struct WalkedFile {
    std::string rel;  // relative to the tree root, '/'-separated
    fs::path path;    // absolute
    FileStat stat;    // symlinks followed
  };
  std::string encode_locked() const;
  Status decode(std::string_view bytes, std::unordered_map<std::string, Entry>* out) const;
  Status walk(const fs::path& dir, const std::string& prefix, std::vector<std::pair<uint64_t, uint64_t>>* ancestors,
              std::vector<WalkedFile>* files) const;

  FileSystem& m_fs;
  fs::path m_state_file;
  Reporter& m_reporter;
  std::function<int64_t()> m_clock;
  mutable std::mutex m_mu;
  std::unordered_map<std::string, Entry> m_entries;  // by absolute path
  std::unordered_set<std::string> m_used;            // paths looked up by this process
  std::unordered_set<std::string> m_hashed_here;     // paths this process hashed itself
  bool m_dirty = false;
  FileDigestStats m_stats;
  std::vector<fs::path> m_hashed;
};

}  // namespace mb
