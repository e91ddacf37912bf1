#pragma once
// FileSystem: the seam between modelbuild and the disk.
//
// Everything that touches files goes through a FileSystem passed in by the
// caller; there is no global instance. Three implementations exist:
//   - RealFileSystem   (fs_real.cc)   POSIX, mmap, fsync, reflink/hardlink;
//   - MemoryFileSystem (fs_memory.cc) in memory, records every read and write
//     so tests can assert "nothing but X was re-hashed";
//   - FaultyFileSystem (fs_faulty.cc) wraps another and fails the Nth write or
//     drops data that was never synced, to test crash safety.
// All implementations are thread-safe: the scheduler calls them from worker
// threads.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace mb {

namespace fs = std::filesystem;

// What stat(2) says about a file. (dev, ino, size, mtime_ns, ctime_ns) is the
// fingerprint behind which a file's digest is remembered.
struct FileStat {
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint32_t mode = 0;  // permission bits only
  uint64_t nlink = 0;
  bool is_dir = false;
  bool is_regular = false;
  bool is_symlink = false;  // only from lstat()
};

// A read-only view of a whole file. Real files are mmapped, so a multi-GB
// model costs address space, not memory. The bytes stay valid until the
// mapping is destroyed.
class ReadOnlyMapping {
 public:
  virtual ~ReadOnlyMapping() = default;
  virtual std::span<const std::byte> bytes() const = 0;
  // A hint that bytes [offset, offset + size) will not be read again soon. A
  // real mapping drops those pages from this process's resident set (the
  // page cache keeps them), so streaming once through a 10 GB file does not
  // show up as 10 GB of RSS. The range is shrunk to whole pages. The bytes
  // stay readable (they are paged in again on access).
  virtual void done_with(size_t offset, size_t size) const {
    (void)offset;
    (void)size;
  }
};

// A file being written. Data is durable only after sync(); a FaultyFileSystem
// drops everything written after the last sync() when it "crashes".
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual Status append(std::span<const std::byte> data) = 0;
  // Positional write, for writers that reserve a header and fill it later.
  virtual Status write_at(uint64_t offset, std::span<const std::byte> data) = 0;
  virtual Status sync() = 0;
  virtual Status close() = 0;
};

// An advisory exclusive lock, released on destruction (or process death: a
// crash never leaves a lock that needs a manual rm).
class FileLock {
 public:
  virtual ~FileLock() = default;
};

enum class LinkKind { kReflink, kHardlink, kCopy };
const char* link_kind_name(LinkKind kind);

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // Errc::kNotFound when the path does not exist.
  virtual Result<FileStat> stat(const fs::path& path) const = 0;
  virtual Result<FileStat> lstat(const fs::path& path) const = 0;
  virtual Result<std::string> read_file(const fs::path& path) const = 0;
  virtual Result<std::unique_ptr<ReadOnlyMapping>> map_file(const fs::path& path) const = 0;
  // Names (not paths) of the entries of a directory, sorted bytewise.
  virtual Result<std::vector<std::string>> list_dir(const fs::path& path) const = 0;

  // Creates or truncates `path` (mode 0644).
  virtual Result<std::unique_ptr<WritableFile>> open_for_write(const fs::path& path) = 0;
  // Atomically replaces `to` (rename(2) semantics).
  virtual Status rename(const fs::path& from, const fs::path& to) = 0;
  // Removing a missing file is not an error.
  virtual Status remove(const fs::path& path) = 0;
  virtual Status remove_all(const fs::path& path) = 0;
  virtual Status create_dirs(const fs::path& path) = 0;
  // fsync a directory so that a rename inside it is durable.
  virtual Status sync_dir(const fs::path& dir) = 0;

  virtual Status hard_link(const fs::path& from, const fs::path& to) = 0;
  // Copy-on-write clone (FICLONE); Errc::kUnsupported where the filesystem
  // has none.
  virtual Status reflink(const fs::path& from, const fs::path& to) = 0;
  virtual Status copy_file(const fs::path& from, const fs::path& to) = 0;
  virtual Status set_mode(const fs::path& path, uint32_t mode) = 0;
  // Sets mtime to now: the cache's LRU clock.
  virtual Status touch(const fs::path& path) = 0;

  // Blocks until the exclusive lock on `path` (created if missing) is held.
  virtual Result<std::unique_ptr<FileLock>> lock(const fs::path& path) = 0;
  // Like lock() but returns nullptr at once when another holder has it.
  virtual Result<std::unique_ptr<FileLock>> try_lock(const fs::path& path) = 0;
};

std::unique_ptr<FileSystem> make_real_file_system();

// Writes `data` to `path` durably and atomically: a temp file in the same
// directory, fsync, rename over `path`, fsync the directory. On failure the
// temp file is removed and `path` is untouched.
Status write_file_atomic(FileSystem& fs, const fs::path& path, std::span<const std::byte> data);
Status write_file_atomic(FileSystem& fs, const fs::path& path, std::string_view text);

// Links `from` to `to`, trying reflink, then hardlink, then copy; returns
// which one worked. `to` must not exist.
Result<LinkKind> link_or_copy(FileSystem& fs, const fs::path& from, const fs::path& to);

// A unique name for a temporary sibling of `path`: "<name>.tmp.<pid>.<n>".
fs::path temp_path_for(const fs::path& path);

inline std::span<const std::byte> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
inline std::string_view as_chars(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace mb
