#pragma once
// TargetOutputs: the materialization and reporting phases of a build, what
// a build leaves in build/ for each requested target:
//   build/TARGET              the artifact, linked from the cache
//                             (cache/materialize.h: reflink, read-only hard
//                             link, or copy), swapped in whole;
//   build/TARGET.report.json  every step report of the target (retention,
//                             gate verdict, …) and the artifact's step key,
//                             rewritten only when it changes.
// A failed target's build/TARGET is removed only when it is known not to be
// what the recipe now asks for: a check failed on it (a failing gate), or
// the key its report records is not the current artifact's, or the build
// failed on the recipe's inputs. A failure that says nothing about the
// artifact (cache I/O, a lock, a full disk, an interrupt, a runner that
// cannot connect) leaves a still-matching build/TARGET alone.
//
// One per build; targets are placed one at a time under a per-target lock,
// so two builds never swap build/TARGET under each other.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/fs.h"
#include "base/reporter.h"
#include "cache/action_cache.h"
#include "cache/materialize.h"

namespace mb {

class Cache;

class TargetOutputs {
 public:
  TargetOutputs(FileSystem& fs, Cache& cache, Reporter& reporter, fs::path build_dir);

  fs::path artifact_path(const std::string& target) const { return m_build_dir / target; }

  // Links `entry` (the artifact step's output, keyed `key`) into build/TARGET.
  Result<MaterializeResult> place(const std::string& target, const ActionEntry& entry);
  // Writes build/TARGET.report.json unless it already says exactly this.
  // `artifact_key` is recorded for later failures (see above).
  Status write_report(const std::string& target, nlohmann::json report, const std::optional<Digest>& artifact_key);

  // Why a failed target's build/TARGET goes, decided by the caller.
  enum class Staleness { kBadVerdict, kOtherArtifact, kBadInput, kNotAboutTheArtifact };
  // The artifact key build/TARGET.report.json records, if any.
  std::optional<Digest> recorded_artifact_key(const std::string& target) const;
  // Removes build/TARGET (warning once) unless `why` is kNotAboutTheArtifact.
  void remove_if_stale(const std::string& target, Staleness why);

 private:
  FileSystem& m_fs;
  Cache& m_cache;
  Reporter& m_reporter;
  fs::path m_build_dir;
};

}  // namespace mb
