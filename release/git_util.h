#pragma once
// Small libgit2 glue shared by the release module: owning pointers, opening
// a repository (with the library initialized once), errors that carry
// libgit2's own message, and writing a blob to a file.
#include <git2.h>

#include <memory>
#include <string>

#include "base/fs.h"
#include "base/result.h"

namespace mb {

template <typename T, void (*Free)(T*)>
struct GitDeleter {
  void operator()(T* p) const {
    if (p) Free(p);
  }
};
template <typename T, void (*Free)(T*)>
using GitPtr = std::unique_ptr<T, GitDeleter<T, Free>>;
using RepoPtr = GitPtr<git_repository, git_repository_free>;

// An error naming `where`, with libgit2's last message appended.
Error git_failure(const std::string& where, const std::string& what);
std::string oid_hex(const git_oid* oid);

// Opens the repository at exactly `dir` (no search upwards): the recipe says
// which repository it means. Not a repository: Errc::kInvalidInput.
Result<RepoPtr> open_repository(const fs::path& dir, const std::string& where);
// Opens the repository containing `dir`, searching upwards; nullptr when
// there is none.
Result<RepoPtr> discover_repository(const fs::path& dir);

// Writes a blob's bytes to `path` (0644, or 0755 when executable).
Status write_blob(FileSystem& fs, const git_blob* blob, const fs::path& path, bool executable);

}  // namespace mb
