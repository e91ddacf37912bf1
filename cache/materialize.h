#pragma once
// materialize(): make a cached step output appear as a directory.
//
// Each output blob is linked into place by reflink, else a read-only hard
// link, else a copy (executables are never hard-linked: the blob is 0444 and
// shared). The directory is built in a temporary sibling and swapped in with
// renames, so readers never see it half-populated. A small marker file,
// `.modelbuild-materialized`, records what was placed and how, so that the
// next call can prove with stat() alone that `dest_dir` already holds exactly
// these files and do nothing (the no-op path never hashes).
#include <cstdint>

#include "base/fs.h"
#include "cache/action_cache.h"
#include "cache/content_store.h"

namespace mb {

struct MaterializeResult {
  LinkKind link_kind = LinkKind::kReflink;  // the worst kind used (copy is worst)
  uint64_t files = 0;
  uint64_t bytes = 0;
  bool noop = false;  // dest_dir already held these outputs
};

// REQUIRES: `entry` came from a lookup() hit or a commit() (its blobs exist).
Result<MaterializeResult> materialize(FileSystem& fs, const ContentStore& cas, const ActionEntry& entry,
                                      const fs::path& dest_dir);

// True when dest_dir already holds exactly entry's outputs; stat-only.
bool is_materialized(const FileSystem& fs, const ContentStore& cas, const ActionEntry& entry, const fs::path& dest_dir,
                     LinkKind* worst = nullptr);

}  // namespace mb
