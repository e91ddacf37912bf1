#pragma once
// `modelbuild release TARGET --to DIR`: ship a gated target with its manifest.
//
// In order, before anything is built: the target must exist and have a gate
// (else kInvalidInput), the signing key must load, DIR must not exist or be
// empty, and the recipe's git working tree must be clean unless allow_dirty.
// Then the target is built (cache hits normally) and the lock file updated;
// a failed gate refuses the release (kGateFailed, exit 3), a failed step is
// kStepFailed. The artifact's files are linked (reflink, read-only hard link
// or copy: cache blobs are immutable, so DIR survives any later gc) into
// DIR/TARGET/, next to DIR/manifest.json and, when signed, DIR/manifest.sig.
// Everything is staged in a sibling temporary directory and renamed into
// place at the end, so a failed release leaves nothing behind.
#include <optional>
#include <string>

#include "base/fs.h"
#include "base/reporter.h"
#include "graph/builder.h"
#include "graph/recipe.h"
#include "graph/rule.h"
#include "release/provenance.h"

namespace mb {

struct ReleaseOptions {
  fs::path to;
  std::optional<fs::path> sign_key;
  bool allow_dirty = false;
};

struct ReleaseSummary {
  fs::path dir;
  uint64_t files = 0;
  uint64_t bytes = 0;
  bool is_signed = false;
  Provenance provenance;
  double accuracy = 0;
};

Result<ReleaseSummary> release_target(FileSystem& fs, Reporter& reporter, const Registry& rules, const Recipe& recipe,
                                      const BuildOptions& build, const std::string& target,
                                      const ReleaseOptions& options);

}  // namespace mb
