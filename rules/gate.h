#pragma once
// GateRule ("gate"): runs a suite against an artifact and stores the verdict.
//
// Inputs: "model" (a model directory), "adapter.N" (adapters applied at run
// time, for fusion: none targets), "suite" (the suite file). Params:
// {"runner": …}. Output: gate.json, the verdict without timings (so that a
// rebuild gives the same bytes); the report is the full gate report
// (accuracy, per-case verdicts with raw responses, timings). The step succeeds whenever
// the suite ran, whatever the accuracy: the verdict is a result worth caching,
// and thresholds are checked by the engine against the report.
#include "graph/rule.h"

namespace mb {

class GateRule : public Rule {
 public:
  std::string_view kind() const override { return "gate"; }
  // 2: gate.json without timings.
  int algorithm_version() const override { return 2; }
  Status run(StepContext& ctx) const override;
};

}  // namespace mb
