#pragma once
// StagingDir: the private, empty directory a step writes its outputs into.
//
// Cache::begin() creates it at `<cache>/tmp/<key hex>.<pid>.<n>` (on the
// cache's filesystem, so committing is a rename per file, never a copy).
// Cache::commit() moves its files into the content store, writes the action
// entry last, and removes it. If neither commit nor abandon happened, the
// destructor removes it; if the process dies first, gc() does, once the
// owning pid is dead. Move-only; not for concurrent use, but different
// StagingDirs are independent. The FileSystem must outlive it.
#include "base/fs.h"
#include "cache/digest.h"

namespace mb {

class StagingDir {
 public:
  StagingDir() = default;
  StagingDir(FileSystem& fs, fs::path dir, Digest key) : m_fs(&fs), m_dir(std::move(dir)), m_key(key) {}
  StagingDir(StagingDir&& other) noexcept { *this = std::move(other); }
  StagingDir& operator=(StagingDir&& other) noexcept;
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;
  ~StagingDir();

  const fs::path& dir() const { return m_dir; }
  const Digest& key() const { return m_key; }
  // False once committed or abandoned.
  bool active() const { return m_fs != nullptr; }

  // Removes the directory and everything in it.
  Status abandon();
  // Forgets the directory without removing it (after a commit).
  void release() { m_fs = nullptr; }

 private:
  FileSystem* m_fs = nullptr;
  fs::path m_dir;
  Digest m_key;
};

// Parses a staging directory name "<64 hex>.<pid>.<n>"; false if it is not one.
bool parse_staging_name(const std::string& name, Digest* key, long* pid);

}  // namespace mb
