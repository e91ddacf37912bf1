#pragma once
// The gate: run a suite against an artifact and record a verdict per case.
//
// run_gate() asks every case of the suite through one runner (loaded once),
// classifies each response, and returns a GateReport whose JSON form is what
// the gate step stores in the cache (so an unchanged artifact is never
// evaluated twice) and what release manifests embed. The report holds no
// threshold: changing min_accuracy must not invalidate a cached verdict, so
// thresholds are applied afterwards (check_thresholds, or the engine's
// checks against "/accuracy").
#include <atomic>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/reporter.h"
#include "gate/classify.h"
#include "gate/runner.h"
#include "gate/suite.h"

namespace mb::gate {

struct CaseVerdict {
  std::string prompt;
  Expect expected = Expect::kDirect;
  bool called_tool = false;
  std::vector<std::string> tools_called;
  bool passed = false;
  std::string why;  // when failed
  std::string response;
  std::string form;
  std::vector<std::string> notes;
  double seconds = 0;
  int tokens = 0;
  std::string first_line() const;
};

struct GateReport {
  std::string suite;
  nlohmann::json runner;
  std::vector<CaseVerdict> cases;
  double load_seconds = 0;
  double accuracy() const;
  int passed() const;
  double avg_generation_seconds() const;
  double tokens_per_second() const;
  // {"version": 1, "suite", "runner", "accuracy", "passed", "total",
  //  "load_seconds", "avg_generation_seconds", "tokens_per_second",
  //  "cases": [{"prompt", "expected": "tool"|"direct", "got", "tools_called",
  //             "passed", "why", "first_line", "response", "form", "notes",
  //             "seconds", "tokens"}]}
  // (accuracy, passed, total, the averages and first_line are derived and
  // ignored by from_json).
  nlohmann::json to_json() const;
  // kCorrupt when `j` is not a report (a cache entry that fails is a miss).
  static Result<GateReport> from_json(const nlohmann::json& j);
  // Prompt, expected, got and the first line of the response, one case a
  // line, then why a failed case failed.
  std::string render(bool failures_only) const;
};

// Asks every case through `runner`; progress (cases done/total) and one
// debug line per case go to `reporter` under the step `label`. A runner
// error stops the gate and is returned as is: it is never a failed case.
// `cancelled` (base/interrupt.h), when set, stops it between cases with
// Errc::kCancelled.
Result<GateReport> run_gate(Runner& runner, const Suite& suite, const nlohmann::json& runner_config, Reporter& reporter,
                            const std::string& label, const std::atomic<bool>* cancelled = nullptr);

// The same, building the runner from `runner_config` for `target` first.
Result<GateReport> run_gate(const FileSystem& fs, const Suite& suite, const RunnerTarget& target,
                            const nlohmann::json& runner_config, Reporter& reporter, const std::string& label = "gate");

struct GateThresholds {
  double min_accuracy = 1.0;
};
// kGateFailed when the accuracy is below the minimum (or the suite had no
// cases); the message carries the per-case report of the failures.
Status check_thresholds(const GateReport& report, const GateThresholds& thresholds);

}  // namespace mb::gate
