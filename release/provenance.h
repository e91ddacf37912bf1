#pragma once
// Provenance: which commit of which repository a recipe was built from, and
// whether the working tree differed from it.
//
// A recipe outside any repository is recorded as such; that is a fact about
// the release, not an error. "Dirty" means a tracked file is modified,
// staged or deleted, or an untracked file that is not ignored exists,
// anywhere in the repository except the project's own build/ and
// .modelbuild/ directories (which builds write to).
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/result.h"

namespace mb {

struct Provenance {
  bool in_repository = false;
  fs::path repository;  // the working directory of the repository
  std::string commit;   // HEAD's commit (full hex); "" for a repository with no commit yet
  bool dirty = false;
  std::vector<std::string> dirty_paths;  // repository-relative, sorted; the first few are shown to users

  nlohmann::json to_json() const;  // {repository: bool, commit, dirty}
};

Result<Provenance> read_provenance(const fs::path& project_dir);

}  // namespace mb
