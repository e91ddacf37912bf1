#pragma once
// GateRule ("gate"): runs a suite against an artifact and stores the verdict.
//
// Inputs: "model" (a model directory), "adapter.N" (adapters applied at run
// time, for fusion: none targets), "suite" (the suite file). Params:
// {"runner": …}. Output: gate.json, the verdict without timings (so that a
// rebuild gives the same bytes); the report is the full gate report
// (accuracy, per-case verdicts with raw responses, timings). The step
// succeeds whenever the suite ran, whatever the accuracy: the verdict is a
// result worth caching, and thresholds are checks the engine runs against
// the report field "accuracy".
//
// The `gate:` key of a target is parsed here too (parse_gate), so that every
// kind of model target gates the same way (expand_gate).
#include <nlohmann/json.hpp>
#include <optional>

#include "graph/rule.h"
#include "graph/target_kind.h"

namespace mb {

class GateRule : public Rule {
 public:
  std::string_view kind() const override { return "gate"; }
  // 2: gate.json without timings.
  int algorithm_version() const override { return 2; }
  Status run(StepContext& ctx) const override;
  Status check_params(const nlohmann::json& params) const override;
  std::vector<ReportField> report_fields() const override;
  bool judges() const override { return true; }
};

// The name under which a target marks its gate step (TargetPlan::marks), for
// the readers of verdicts: release manifests, bench, the build summary.
inline constexpr const char* kGateMark = "gate";
inline constexpr const char* kAccuracy = "accuracy";

// A target's `gate:` map: {suite, min_accuracy, min_delta_retention,
// max_mean_kl, min_top1_agreement, runner}. The last two add the fidelity
// steps (rules/fidelity.h).
struct GateDecl {
  std::string suite;  // a source or target name
  double min_accuracy = 1.0;
  std::optional<double> min_delta_retention;
  std::optional<double> max_mean_kl;
  std::optional<double> min_top1_agreement;
  nlohmann::json runner = {{"type", "native"}};
};
// nullopt when the target (and defaults) have no gate or `gate: null`.
Result<std::optional<GateDecl>> parse_gate(TargetReader& reader);

// The suite file of a suite input: the file itself, or a directory's only
// YAML file.
Result<fs::path> suite_file_of(const FileSystem& fs, fs::path suite);

// The gate step on `model` (and the run-time adapters), named `role`, and its
// accuracy check (not yet added to the target: a search's candidates keep
// their own).
struct GateStep {
  int step = -1;
  Check accuracy;
};
Result<GateStep> add_gate_step(TargetExpansion& x, const GateDecl& gate, const InputRef& model,
                               const std::vector<InputRef>& runtime_adapters, const std::string& role);

// add_gate_step() for the target itself: adds the check and marks the step
// kGateMark.
Status expand_gate(TargetExpansion& x, const GateDecl& gate, const InputRef& model,
                   const std::vector<InputRef>& runtime_adapters);

}  // namespace mb
