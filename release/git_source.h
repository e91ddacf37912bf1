#pragma once
// Git-pinned sources: `git: {repo, rev, path}` read straight from the object
// database at `rev`, with no checkout.
//
// The blob or tree at `path` is written once into the cache under its git
// object id (<cache>/git/<oid>/…), through a temporary directory and a
// rename, so nothing partial is ever visible and the same object is never
// written twice. The builder then digests that copy like any other source:
// its identity is its content, so moving the pin to another commit with the
// same bytes (same object id) rebuilds nothing.
#include <map>
#include <string>

#include "base/fs.h"
#include "base/result.h"
#include "graph/recipe.h"

namespace mb {

class Builder;
struct Plan;

struct ResolvedGit {
  fs::path path;       // the file or directory in the cache
  std::string commit;  // the commit `rev` named (full hex)
  std::string oid;     // the blob or tree id at `path`
};

// Errors are Errc::kInvalidInput (exit 2) and name the recipe source: not a
// repository, unknown revision, path not in that commit, a submodule.
Result<ResolvedGit> resolve_git_source(FileSystem& fs, const SourceDecl& source, const fs::path& cache_dir);

// Resolves every git-pinned source the plan reads (before anything runs, so
// a bad pin is an input error, not a step failure) and installs a resolver
// on `builder` that answers from the result. Returns name -> resolution.
Result<std::map<std::string, ResolvedGit>> install_git_sources(FileSystem& fs, const Recipe& recipe, const Plan& plan,
                                                               Builder& builder);

}  // namespace mb
