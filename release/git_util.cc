#include "release/git_util.h"

#include <mutex>

namespace mb {
namespace {

void init_libgit2() {
  // Never shut down: the library's state lives as long as the process.
  static std::once_flag once;
  std::call_once(once, [] { git_libgit2_init(); });
}

}  // namespace

Error git_failure(const std::string& where, const std::string& what) {
  const ::git_error* e = git_error_last();
  std::string detail = (e && e->message) ? fmt::format(" ({})", e->message) : "";
  return Error{Errc::kInvalidInput, where, what + detail};
}

std::string oid_hex(const git_oid* oid) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, oid);
  return buf;
}

Result<RepoPtr> open_repository(const fs::path& dir, const std::string& where) {
  init_libgit2();
  git_repository* repo = nullptr;
  if (git_repository_open_ext(&repo, dir.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) != 0)
    return make_error(Errc::kInvalidInput, where, "{} is not a git repository", dir.string());
  return RepoPtr(repo);
}

Result<RepoPtr> discover_repository(const fs::path& dir) {
  init_libgit2();
  git_repository* repo = nullptr;
  int rc = git_repository_open_ext(&repo, dir.c_str(), 0, nullptr);
  if (rc == GIT_ENOTFOUND) return RepoPtr();
  if (rc != 0) return git_failure(dir.string(), "cannot open the git repository");
  return RepoPtr(repo);
}

Status write_blob(FileSystem& fs, const git_blob* blob, const fs::path& path, bool executable) {
  auto size = static_cast<size_t>(git_blob_rawsize(blob));
  std::span<const std::byte> bytes(static_cast<const std::byte*>(git_blob_rawcontent(blob)), size);
  MB_ASSIGN(auto file, fs.open_for_write(path));
  MB_TRY(file->append(bytes));
  MB_TRY(file->sync());
  MB_TRY(file->close());
  if (executable) MB_TRY(fs.set_mode(path, 0755));
  return {};
}

}  // namespace mb
