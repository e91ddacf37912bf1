#pragma once
// What a built target is made of, as JSON: the record the lock file keeps
// per target and the core of a release manifest.
//
//   inputs:  {source: {digest, size[, git: {repo, rev, path, commit}]}}
//   steps:   [{step, kind, key, output}]      in plan order
//   outputs: {relative path: {digest, size}}  the artifact's files
//   gate:    {accuracy, min_accuracy, passed} or null without a gate
//   state:   "ok" or "failed"
//
// Digests are "sha256:<hex>"; keys are sorted (nlohmann::json objects), so
// the same build always gives the same bytes.
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "graph/builder.h"
#include "graph/plan.h"
#include "graph/recipe.h"
#include "release/git_source.h"

namespace mb {

std::string digest_string_of(const Digest& d);  // "sha256:<hex>"

// A gate verdict read from a build report. `present` is false for a target
// with no gate.
struct GateVerdict {
  bool present = false;
  bool ran = false;  // the gate step built or came from the cache
  bool passed = false;
  double accuracy = 0;
  double min_accuracy = 1.0;
  nlohmann::json report;  // the gate step's full report
};
// The step holding the target's gate verdict (a search's: the winner's), or -1.
int gate_step_of(const Plan& plan, const BuildReport& report, const std::string& target);
GateVerdict gate_verdict(const Plan& plan, const BuildReport& report, const std::string& target);

// The artifact's files: relative path -> (digest, size), and the directory
// they are in.
struct ArtifactFiles {
  fs::path dir;
  bool in_cache = true;  // immutable cache blobs (may be hard-linked); false: the user's own source files
  std::map<std::string, std::pair<Digest, uint64_t>> files;
};
// REQUIRES: every step of `target` succeeded in `report`.
Result<ArtifactFiles> artifact_files(Builder& builder, const Recipe& recipe, const Plan& plan,
                                     const BuildReport& report, const std::string& target,
                                     const std::map<std::string, ResolvedGit>& git);

// The whole record. Targets whose steps did not all succeed have no outputs.
Result<nlohmann::json> describe_target(Builder& builder, const Recipe& recipe, const Plan& plan,
                                       const BuildReport& report, const std::string& target,
                                       const std::map<std::string, ResolvedGit>& git);

}  // namespace mb
