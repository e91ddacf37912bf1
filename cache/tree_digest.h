#pragma once
// Tree digests: one digest for a directory of files.
//
// A tree digest is SHA-256 over a canonical list of (relative path, file
// digest, size) of the regular files in a directory, sorted by path bytes
// (exact bytes in docs/cache-format.md, "Tree digests"). The same function
// digests a source directory (FileDigestCache::digest_of_tree) and a step's
// outputs as recorded in its action-cache entry, so identical output bytes
// give an identical digest wherever they came from: that is what lets a
// downstream step be skipped when an upstream rebuild changed nothing
// (early cutoff).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cache/digest.h"

namespace mb {

struct TreeEntry {
  std::string path;  // relative, '/'-separated, no "." or ".." components
  Digest digest;
  uint64_t size = 0;
};

// The name of the marker that materialize() leaves in a directory. It is
// bookkeeping, not content: tree walks skip it at every level.
inline constexpr std::string_view kMaterializedMarker = ".modelbuild-materialized";

// Order of `entries` does not matter; they are sorted by path bytes first.
// REQUIRES: paths are unique.
Digest tree_digest(const std::vector<TreeEntry>& entries);

// True for a path tree_digest and the cache accept: relative, '/'-separated,
// no empty, "." or ".." components, no NUL.
bool is_valid_relative_path(std::string_view path);

}  // namespace mb
