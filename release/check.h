#pragma once
// `--check`: is the build reproducible? Nix's --check in spirit.
//
// Builds the plan normally (the cached result is the reference), then
// rebuilds every step from scratch into a throw-away cache under `scratch`
// (never reading an action cache) and compares each step's output digests.
// A differing .safetensors file is compared tensor by tensor, so the report
// names the tensors whose bytes, dtype or shape changed. Gate steps are
// compared by verdict (accuracy, each case's classification), not bytes:
// their reports carry timings.
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/reporter.h"
#include "graph/builder.h"
#include "graph/plan.h"
#include "graph/recipe.h"
#include "graph/rule.h"

namespace mb {

struct CheckResult {
  BuildReport reference;                 // the normal build
  bool reference_ok = false;             // false: nothing was rebuilt (see reference)
  std::vector<std::string> differences;  // one multi-line message per step that did not reproduce
  size_t steps_compared = 0;
  bool reproducible() const { return reference_ok && differences.empty(); }
};

// The files of a safetensors pair that differ, one line per tensor (at most
// `limit` lines, then a count).
std::vector<std::string> differing_tensors(const FileSystem& fs, const fs::path& a, const fs::path& b,
                                           size_t limit = 10);

Result<CheckResult> check_reproducible(FileSystem& fs, Reporter& reporter, const Registry& rules, const Recipe& recipe,
                                       const Plan& plan, const BuildOptions& build, const fs::path& scratch);

}  // namespace mb
