#pragma once
// Helpers shared by the cache tests (header-only so it stays out of the
// library): writing files through a FileSystem, temp dirs on the real disk,
// and looking for warnings in a RecordingReporter.
#include <stdlib.h>

#include <string>
#include <string_view>

#include "base/fs.h"
#include "base/reporter.h"
#include "cache/cache.h"

namespace mb::testing {

inline Status write_text(FileSystem& fs, const fs::path& path, std::string_view text, bool sync = true) {
  MB_ASSIGN(auto f, fs.open_for_write(path));
  MB_TRY(f->append(as_bytes(text)));
  if (sync) MB_TRY(f->sync());
  return f->close();
}

inline size_t count_warnings(const RecordingReporter& r, std::string_view needle = "") {
  size_t n = 0;
  for (const Event& e : r.events()) {
    if (e.level == Level::kWarn && e.message.find(needle) != std::string::npos) ++n;
  }
  return n;
}

// Runs a fake step for `key`: writes `files` (relative path -> content) into a
// staging directory and commits them.
inline Result<ActionEntry> build_step(Cache& cache, const Digest& key,
                                      const std::vector<std::pair<std::string, std::string>>& files, bool sync = true) {
  MB_ASSIGN(StagingDir staging, cache.begin(key));
  for (const auto& [rel, content] : files) {
    fs::path p = staging.dir() / rel;
    MB_TRY(cache.fs().create_dirs(p.parent_path()));
    MB_TRY(write_text(cache.fs(), p, content, sync));
  }
  return cache.commit(staging, "test", nlohmann::json{{"files", files.size()}});
}

inline Digest key_of(std::string_view name) { return digest_string(name); }

// A fresh directory under the system temp dir, removed with its contents.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "mb-cache-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) != nullptr) m_path = tmpl;
  }
  ~TempDir() {
    auto fs = make_real_file_system();
    if (!m_path.empty()) (void)fs->remove_all(m_path);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return m_path; }

 private:
  fs::path m_path;
};

}  // namespace mb::testing
