#pragma once
// Execution in staging: the phase of a build that runs a rule.
//
// The rule writes into a fresh staging directory inside the cache
// (Cache::begin); when it succeeds, its files are committed to the content
// store and its action entry written (the commit point); when it fails or
// throws, the staging directory is discarded and nothing is published. An
// exception is the step's failure with a message (Errc::kInternal), never
// the process's end. The caller holds the step's lock.
#include <atomic>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/reporter.h"
#include "cache/action_cache.h"
#include "graph/plan.h"
#include "graph/rule.h"

namespace mb {

class Cache;

struct StepRun {
  const Rule& rule;
  const Step& step;
  const std::vector<StepInput>& inputs;
  Digest key;
  fs::path work_dir;  // the recipe's directory
  int threads = 1;
  const std::atomic<bool>* cancelled = nullptr;
};

// The committed entry; the error of the rule (its code kept) or of the cache.
Result<ActionEntry> execute_in_staging(Cache& cache, FileSystem& fs, Reporter& reporter, const StepRun& run);

}  // namespace mb
