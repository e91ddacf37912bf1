#pragma once
// SourceDigests: the first phase of a build, the content digest of every
// recipe source the plan reads.
//
// Digests come from the cache's FileDigestCache, so an unchanged source costs
// a stat per file. hash_all() hashes several sources at once before any step
// asks (a step with eight single-file inputs would otherwise hash them one
// after another); get() memoizes, so each source is hashed once per build.
// Errors are not memoized: the step that reads a broken source reports it in
// context. A git-pinned source is first resolved to a path on disk by the
// builder's git resolver.
//
// Thread-safe: get(), path() and files() may be called from the builder's
// worker threads at once.
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "cache/digest.h"
#include "graph/recipe.h"

namespace mb {

class FileDigestCache;

using GitResolver = std::function<Result<fs::path>(const SourceDecl&)>;

class SourceDigests {
 public:
  // `threads`: cores hashing may use (0 = all).
  SourceDigests(const Recipe& recipe, FileDigestCache& digests, GitResolver git, int threads);

  struct Source {
    fs::path path;
    Digest digest;
  };
  // Hashes every source in `names` that is not known yet, several at a time.
  void hash_all(const std::vector<std::string>& names);
  Result<Source> get(const std::string& name);
  // Where a source is on disk, without hashing it (git pins resolved).
  Result<fs::path> path(const std::string& name) const;
  // The digest of every regular file of a source already hashed (for the
  // explain log's "which file changed"); empty when unknown.
  std::map<std::string, Digest> files(const std::string& name);

 private:
  Result<Source> compute(const std::string& name, int threads);

  const Recipe& m_recipe;
  FileDigestCache& m_digests;
  GitResolver m_git;
  int m_threads;
  std::mutex m_mu;
  std::map<std::string, Source> m_known;  // guarded by m_mu
  // Sources some thread is hashing now: others wait for it rather than hash
  // the same gigabytes again (errors are not memoized, so a waiter retries).
  std::set<std::string> m_in_flight;  // guarded by m_mu
  std::condition_variable m_done;
};

}  // namespace mb
