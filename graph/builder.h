#pragma once
// Builder: executes a Plan against the content-addressed cache, in phases
// that each live in their own file:
//   1. source digests   graph/source_digests.h   every source, hashed once
//   2. step keys        graph/step_key.h         kind, version, params, inputs
//   3. lookup and lock  cache/cache.h            hit, or lock and look again
//   4. preflight        graph/preflight.h        once, before the first run
//   5. execution        graph/step_execution.h   the rule, in staging
//   6. checks           graph/target_checks.h    thresholds on step reports
//   7. materialization  graph/target_outputs.h   build/TARGET by link
//   8. reporting        graph/target_outputs.h   build/TARGET.report.json
// The builder itself schedules steps (graph/scheduler.h) and carries each
// step's result from phase to phase. A step input's digest is the upstream
// step's OUTPUT digest (early cutoff: an upstream rebuild that yields
// identical bytes stops there). A miss takes the per-key lock and looks
// again, since another process may have built it meanwhile. evaluate() does
// the same bookkeeping without running anything, for `status`, `explain` and
// `--dry-run`.
//
// One Builder per command invocation; build() runs steps on `jobs` threads.
// An exception anywhere in a step is that step's failure, never the
// process's. build() first sweeps the temporaries dead builds left
// (cache/sweep.h). After an interrupt (base/interrupt.h) it starts no new
// step, lets the running ones stop (their children are terminated, their
// staging removed), places the targets that were complete, leaves the
// others' build/TARGET alone and removes any temporary of its own.
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/reporter.h"
#include "cache/digest.h"
#include "graph/plan.h"
#include "graph/recipe.h"
#include "graph/registry.h"

namespace mb {

class Cache;
class FileDigestCache;
class ExplainLog;
class FallbackStore;

struct BuildOptions {
  fs::path cache_dir;        // content store + action cache
  fs::path state_dir;        // this project's explain log
  fs::path build_dir;        // targets are materialized here
  int jobs = 0;              // parallel steps; 0 = number of cores
  int threads_per_step = 0;  // cores a step may use; 0 = number of cores
  bool keep_going = false;
  bool dry_run = false;
  bool regate = false;    // re-run gate steps even when a verdict is cached
  bool use_cache = true;  // false: run every step, never read the action cache (--check)
  bool materialize = true;
  FallbackStore* fallback = nullptr;  // the remote cache (cache/fallback_store.h); borrowed
};

enum class StepState { kPending, kCached, kBuilt, kFailed, kSkipped, kStale };
const char* step_state_name(StepState s);

struct StepResult {
  StepState state = StepState::kPending;
  bool key_known = false;
  Digest key;
  Digest output_digest;
  nlohmann::json report = nlohmann::json::object();
  std::vector<std::pair<std::string, Digest>> outputs;  // relative path, digest
  fs::path view;                                        // a directory holding the output files (linked from the store)
  double seconds = 0;
  std::string error;
  Errc error_code = Errc::kStepFailed;  // of a failed step
  std::vector<std::string> why;         // explanations when stale or rebuilt
};

enum class TargetState { kUpToDate, kBuilt, kFailed, kStale };
const char* target_state_name(TargetState s);

// What a search (TargetPlan::candidates) found out about one candidate.
struct CandidateResult {
  std::string name;
  std::string verdict;               // "passed", "rejected", "untried"
  std::vector<std::string> reasons;  // why it was rejected
};

struct TargetResult {
  std::string name;
  TargetState state = TargetState::kStale;
  std::vector<std::string> failures;  // one sentence each
  Errc failure_code = Errc::kStepFailed;
  fs::path path;          // materialized artifact (or the source it aliases)
  std::string link_kind;  // how it was materialized
  // A target that searches: every candidate, and which one is the artifact.
  std::vector<CandidateResult> candidates;
  int winner = -1;
  // The artifact (for a search, the winner's) and the steps that made the
  // target: Plan::steps_for() without the candidates that never had to run.
  std::optional<InputRef> artifact;
  std::vector<int> steps;
};

struct BuildReport {
  std::vector<StepResult> steps;      // indexed like Plan::steps
  std::vector<TargetResult> targets;  // requested targets, in order
  // The signal that interrupted the build (base/interrupt.h), or 0. Steps it
  // stopped are kFailed with Errc::kCancelled; unstarted ones kSkipped.
  int interrupted_by = 0;
  bool ok() const;
  // The exit status: 0, 128 + the signal after an interrupt, or the worst
  // failure's code.
  int exit_code() const;
};

// The result of `target` in `report`, or nullptr when it was not requested.
const TargetResult* find_target_result(const BuildReport& report, const std::string& target);

class Builder {
 public:
  Builder(FileSystem& fs, Reporter& reporter, const Registry& rules, BuildOptions options);
  ~Builder();

  // An error (rather than a report) when nothing could be built at all: the
  // cache cannot be opened, or preflight found bad input (exit 2, and no
  // step has run).
  Result<BuildReport> build(const Recipe& recipe, const Plan& plan);
  Result<BuildReport> evaluate(const Recipe& recipe, const Plan& plan);

  // The cache roots this builder uses (after defaults).
  const BuildOptions& options() const { return m_options; }
  Cache& cache();
  FileDigestCache& file_digests();

  // Turns a git-pinned source into a directory or file on disk (the release
  // module reads it from the object database). Unset: git sources are errors.
  std::function<Result<fs::path>(const SourceDecl&)> git_resolver;

 private:
  class Run;
  Status open();

  FileSystem& m_fs;
  Reporter& m_reporter;
  const Registry& m_rules;
  BuildOptions m_options;
  std::unique_ptr<Cache> m_cache;
  std::unique_ptr<ExplainLog> m_explain;
};

}  // namespace mb
