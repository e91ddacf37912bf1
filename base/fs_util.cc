// Helpers built only on the FileSystem interface, so every implementation
// (real, memory, faulty) shares one definition of "atomic write".
#include <unistd.h>

#include <atomic>

#include "base/fs.h"

namespace mb {

const char* link_kind_name(LinkKind kind) {
  switch (kind) {
    case LinkKind::kReflink:
      return "reflink";
    case LinkKind::kHardlink:
      return "hardlink";
    case LinkKind::kCopy:
      return "copy";
  }
  return "?";
}

fs::path temp_path_for(const fs::path& path) {
  static std::atomic<uint64_t> counter{0};
  return path.parent_path() / fmt::format("{}.tmp.{}.{}", path.filename().string(), ::getpid(), counter.fetch_add(1));
}

Status write_file_atomic(FileSystem& fs, const fs::path& path, std::span<const std::byte> data) {
  fs::path tmp = temp_path_for(path);
  auto write = [&]() -> Status {
    MB_ASSIGN(auto file, fs.open_for_write(tmp));
    MB_TRY(file->append(data));
    MB_TRY(file->sync());
    MB_TRY(file->close());
    MB_TRY(fs.rename(tmp, path));
    fs::path dir = path.parent_path();
    return fs.sync_dir(dir.empty() ? fs::path(".") : dir);
  };
  Status st = write();
  if (!st.ok()) (void)fs.remove(tmp);
  return st;
}

Status write_file_atomic(FileSystem& fs, const fs::path& path, std::string_view text) {
  return write_file_atomic(fs, path, as_bytes(text));
}

Result<LinkKind> link_or_copy(FileSystem& fs, const fs::path& from, const fs::path& to) {
  if (fs.reflink(from, to).ok()) return LinkKind::kReflink;
  if (fs.hard_link(from, to).ok()) return LinkKind::kHardlink;
  MB_TRY(fs.copy_file(from, to));
  return LinkKind::kCopy;
}

}  // namespace mb
