#pragma once
// Preflight: the checks each target's kind can make on the sources' contents
// before anything runs (TargetSpec::preflight: a base the gate's engine
// cannot run, a tokenizer.json that does not parse, ...).
//
// The builder runs them once per build, just before the first step that must
// execute, and waits for them: a failure stops the build with exit 2 before
// any step has run or been cached. A build where every step is a cache hit
// never runs them, so the no-op build stays a few stats. Thread-safe.
#include <mutex>
#include <optional>

#include "base/fs.h"
#include "graph/plan.h"
#include "graph/recipe.h"
#include "graph/source_digests.h"

namespace mb {

class Preflight {
 public:
  Preflight(const FileSystem& fs, const Recipe& recipe, const Plan& plan, const SourceDigests& sources);

  // Runs every check the first time; later calls return the same verdict.
  Status ensure();
  // The verdict if ensure() ran, else ok.
  Status verdict();

 private:
  Status run() const;

  const FileSystem& m_fs;
  const Recipe& m_recipe;
  const Plan& m_plan;
  const SourceDigests& m_sources;
  std::mutex m_mu;
  std::optional<Status> m_verdict;  // guarded by m_mu
};

}  // namespace mb
