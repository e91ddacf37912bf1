#pragma once
// The gate: run a suite against an artifact and record a verdict per case.
//
// run_gate() loads the runner once, asks every case, classifies each
// response, and returns a GateReport whose JSON form is what the gate step
// stores in the cache (so an unchanged artifact is never evaluated twice)
// and what release manifests embed. Thresholds are applied by the caller.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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
  nlohmann::json to_json() const;
  // Prompt, expected, got and the first line of the response, one case a line.
  std::string render(bool failures_only) const;
};

Result<GateReport> run_gate(Runner& runner, const Suite& suite, const nlohmann::json& runner_config,
                            Reporter& reporter, const std::string& label);

}  // namespace mb::gate
