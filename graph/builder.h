#pragma once
// Builder: executes a Plan against the content-addressed cache.
//
// For every step it computes the key (kind, algorithm version, params, input
// digests), where a source input's digest comes from the stat-fingerprinted
// FileDigestCache and a step input's digest is the upstream step's OUTPUT
// digest (early cutoff: an upstream rebuild that yields identical bytes
// stops there). A hit reuses the cached output; a miss takes the per-key lock,
// checks again (another process may have built it meanwhile), runs the rule
// in a staging directory and publishes atomically. Targets whose checks
// (accuracy, delta retention) pass are materialized into build/TARGET by
// link. evaluate() does the same bookkeeping without running anything, for
// `status`, `explain` and `--dry-run`.
//
// One Builder per command invocation; build() runs steps on `jobs` threads.
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
#include "graph/rule.h"

namespace mb {

class Cache;
class FileDigestCache;
class ExplainLog;

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
  std::vector<std::string> why;  // explanations when stale or rebuilt
};

enum class TargetState { kUpToDate, kBuilt, kFailed, kStale };
const char* target_state_name(TargetState s);

struct TargetResult {
  std::string name;
  TargetState state = TargetState::kStale;
  std::vector<std::string> failures;  // one sentence each
  Errc failure_code = Errc::kStepFailed;
  fs::path path;          // materialized artifact (or the source it aliases)
  std::string link_kind;  // how it was materialized
};

struct BuildReport {
  std::vector<StepResult> steps;      // indexed like Plan::steps
  std::vector<TargetResult> targets;  // requested targets, in order
  bool ok() const;
  // The exit status: 0, or the worst failure's code.
  int exit_code() const;
};

class Builder {
 public:
  Builder(FileSystem& fs, Reporter& reporter, const RuleRegistry& rules, BuildOptions options);
  ~Builder();

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
  const RuleRegistry& m_rules;
  BuildOptions m_options;
  std::unique_ptr<Cache> m_cache;
  std::unique_ptr<ExplainLog> m_explain;
};

}  // namespace mb
