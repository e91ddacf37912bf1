#pragma once
// Test filesystems: MemoryFileSystem and FaultyFileSystem.
//
// MemoryFileSystem is a whole directory tree in memory (files, directories,
// symlinks, hard links sharing one inode, advisory locks). It records every
// read, map and write by path so a test can assert "only X was re-hashed",
// and it remembers, per inode, the bytes as of the last sync() so that a
// simulated power loss can drop the rest. Timestamps come from the real
// clock (made strictly increasing) so they compare sensibly with the
// wall-clock times that FileDigestCache records; tests move them with
// set_mtime()/set_ctime(). Permission bits are stored and reported but not
// enforced. Paths are made absolute against "/" and normalized lexically.
//
// FaultyFileSystem wraps another FileSystem (it does not own it) and injects
// failures: the Nth data write, or the Nth mutating operation of any kind,
// fails with Errc::kIo (only that one, or, when sticky, every later one too
// until clear_faults(), like a full disk). crash()
// drops every byte never synced; it needs a MemoryFileSystem underneath.
// It models data loss only, not the reordering of directory operations.
//
// Both are thread-safe: one mutex each guards all state.
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "base/fs.h"

namespace mb {

class MemoryFileSystem : public FileSystem {
 public:
  // What a recorded access did; kWrite is open_for_write, kLink is the
  // destination of hard_link/reflink/copy_file.
  enum class Op { kRead, kMap, kWrite, kLink, kRename, kRemove };
  struct Access {
    Op op;
    fs::path path;
  };

  MemoryFileSystem();
  ~MemoryFileSystem() override;

  // FileSystem.
  Result<FileStat> stat(const fs::path& path) const override;
  Result<FileStat> lstat(const fs::path& path) const override;
  Result<std::string> read_file(const fs::path& path) const override;
  Result<std::unique_ptr<ReadOnlyMapping>> map_file(const fs::path& path) const override;
  Result<std::vector<std::string>> list_dir(const fs::path& path) const override;
  Result<std::unique_ptr<WritableFile>> open_for_write(const fs::path& path) override;
  Status rename(const fs::path& from, const fs::path& to) override;
  Status remove(const fs::path& path) override;
  Status remove_all(const fs::path& path) override;
  Status create_dirs(const fs::path& path) override;
  Status sync_dir(const fs::path& dir) override;
  Status hard_link(const fs::path& from, const fs::path& to) override;
  Status reflink(const fs::path& from, const fs::path& to) override;
  Status copy_file(const fs::path& from, const fs::path& to) override;
  Status set_mode(const fs::path& path, uint32_t mode) override;
  Status touch(const fs::path& path) override;
  Result<std::unique_ptr<FileLock>> lock(const fs::path& path) override;
  Result<std::unique_ptr<FileLock>> try_lock(const fs::path& path) override;

  // Test helpers. add_file creates missing parent directories and counts as
  // durable (synced) data; it is not recorded as a write.
  void add_file(const fs::path& path, std::string_view content);
  void add_symlink(const fs::path& path, const fs::path& target);
  // Sets the timestamp; set_mtime also moves ctime to "now", as utimensat does.
  Status set_mtime(const fs::path& path, int64_t mtime_ns);
  Status set_ctime(const fs::path& path, int64_t ctime_ns);
  // reflink() fails with kUnsupported unless enabled (like ext4).
  void set_reflink_supported(bool supported);
  // Reads without recording an access.
  Result<std::string> contents(const fs::path& path) const;
  // Every file's content reverts to what it was at its last sync() (files
  // never synced become empty). Called by FaultyFileSystem::crash().
  void drop_unsynced();

  std::vector<Access> accesses() const;
  // Paths passed to read_file() or map_file(), in call order.
  std::vector<fs::path> read_paths() const;
  // Paths opened for writing, in call order.
  std::vector<fs::path> written_paths() const;
  // Destinations of hard_link(), reflink() and copy_file(), in call order.
  std::vector<fs::path> linked_paths() const;
  void clear_accesses();

  // The clock used for timestamps: wall-clock nanoseconds, strictly increasing.
  int64_t now_ns() const;

 private:
  struct Inode;
  struct Resolved;
  class Writer;
  class Lock;
  friend class Writer;
  friend class Lock;

  // All private helpers expect m_mu to be held.
  Result<Resolved> resolve(const fs::path& path, bool follow_last, int depth = 0) const;
  Result<std::shared_ptr<Inode>> existing(const fs::path& path, bool follow_last) const;
  std::shared_ptr<Inode> new_inode(int kind) const;
  int64_t now_locked() const;
  std::vector<fs::path> paths_with(std::initializer_list<Op> ops) const;
  FileStat stat_of(const Inode& inode) const;
  void record(Op op, const fs::path& path) const;
  Status make_dirs_locked(const fs::path& path);
  void unlink_tree(const std::shared_ptr<Inode>& inode);
  Status remove_impl(const fs::path& path, bool recursive);
  Result<std::unique_ptr<FileLock>> lock_impl(const fs::path& path, bool wait);
  void release_lock(uint64_t ino);

  mutable std::mutex m_mu;
  std::condition_variable m_lock_cv;
  std::shared_ptr<Inode> m_root;
  mutable uint64_t m_next_ino = 2;
  mutable int64_t m_last_time_ns = 0;
  bool m_reflink_supported = false;
  std::set<uint64_t> m_locked;
  mutable std::vector<Access> m_accesses;
};

class FaultyFileSystem : public FileSystem {
 public:
  explicit FaultyFileSystem(FileSystem& inner);

  // The n-th (1-based, counted from this call) append/write_at fails with
  // kIo; when `sticky`, so does every later one until clear_faults().
  void fail_write_after(int n, bool sticky = false);
  // The n-th mutating operation of any kind (open_for_write, append,
  // write_at, sync, close, rename, remove, remove_all, create_dirs,
  // sync_dir, hard_link, reflink, copy_file, set_mode, touch, lock) fails;
  // when `sticky`, so does every later one until clear_faults().
  void fail_op_after(int n, bool sticky = false);
  void clear_faults();
  // Mutating operations seen since construction or reset_counts().
  int op_count() const;
  void reset_counts();
  // Power loss: every byte written but never synced is gone. Requires the
  // inner FileSystem to be a MemoryFileSystem (kUnsupported otherwise).
  // Clears the faults.
  Status crash();

  Result<FileStat> stat(const fs::path& path) const override { return m_inner.stat(path); }
  Result<FileStat> lstat(const fs::path& path) const override { return m_inner.lstat(path); }
  Result<std::string> read_file(const fs::path& path) const override { return m_inner.read_file(path); }
  Result<std::unique_ptr<ReadOnlyMapping>> map_file(const fs::path& path) const override {
    return m_inner.map_file(path);
  }
  Result<std::vector<std::string>> list_dir(const fs::path& path) const override { return m_inner.list_dir(path); }
  Result<std::unique_ptr<WritableFile>> open_for_write(const fs::path& path) override;
  Status rename(const fs::path& from, const fs::path& to) override;
  Status remove(const fs::path& path) override;
  Status remove_all(const fs::path& path) override;
  Status create_dirs(const fs::path& path) override;
  Status sync_dir(const fs::path& dir) override;
  Status hard_link(const fs::path& from, const fs::path& to) override;
  Status reflink(const fs::path& from, const fs::path& to) override;
  Status copy_file(const fs::path& from, const fs::path& to) override;
  Status set_mode(const fs::path& path, uint32_t mode) override;
  Status touch(const fs::path& path) override;
  Result<std::unique_ptr<FileLock>> lock(const fs::path& path) override;
  Result<std::unique_ptr<FileLock>> try_lock(const fs::path& path) override;

 private:
  class Writer;
  friend class Writer;
  // Counts one mutating operation; an error when it is the failing one.
  Status op(const char* what, const fs::path& path, bool is_data_write);

  FileSystem& m_inner;
  mutable std::mutex m_mu;
  int m_ops = 0;
  int m_writes = 0;
  int m_fail_op_at = 0;     // 0: never
  int m_fail_write_at = 0;  // 0: never
  bool m_op_sticky = false;
  bool m_write_sticky = false;
};

}  // namespace mb
