#pragma once
// modelbuild.lock: what each target was last built from and into, next to
// the recipe, meant to be committed (like dvc.lock).
//
//   {"format": 1,
//    "targets": {NAME: <target record, see target_record.h>}}
//
// JSON with sorted keys and two-space indentation, so a reviewer's diff
// shows exactly what a recipe change did. After a build the requested
// targets' records are replaced (a failed gate is recorded with its
// verdict; a target whose steps failed keeps its previous record), records
// of targets no longer in the recipe are dropped, and the file is rewritten
// only when its bytes change (atomically).
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/result.h"
#include "graph/builder.h"
#include "graph/plan.h"
#include "release/git_source.h"

namespace mb {

inline constexpr int kLockFormat = 1;

fs::path lock_file_path(const fs::path& recipe_dir);

// An existing lock file, read and validated: its text ("" when there is
// none) and its targets. A corrupt or newer-format file is an error naming it
// (kCorrupt / kUnsupported, exit 2); the build command reads it before any
// step runs, so a bad lock file stops a build before it starts.
struct LockFileText {
  std::string text;
  nlohmann::json targets = nlohmann::json::object();
};
Result<LockFileText> read_lock_file(const FileSystem& fs, const fs::path& path);

// Merges `records` (target name -> record) into the lock file. Returns true
// when the file changed. A corrupt or newer-format existing lock file is an
// error naming it (kCorrupt / kUnsupported): it is never silently replaced.
Result<bool> update_lock_file(FileSystem& fs, const fs::path& path, const nlohmann::json& records,
                              const std::vector<std::string>& recipe_targets);

// After a completed (not dry-run) build: records every requested target
// whose steps all succeeded (its gate verdict included, passed or not) into
// <recipe dir>/modelbuild.lock. Returns true when the file changed.
Result<bool> write_lock_after_build(Builder& builder, const Recipe& recipe, const Plan& plan, const BuildReport& report,
                                    const std::map<std::string, ResolvedGit>& git);

// The lock file's canonical text for a JSON document.
std::string lock_file_text(const nlohmann::json& lock);

}  // namespace mb
