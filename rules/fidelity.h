#pragma once
// The fidelity steps (gate/fidelity.h): how close an artifact's next-token
// distributions stay to its reference, the target's base with its adapters
// applied at run time (what was trained).
//
// ReferenceLogitsRule ("reference_logits"): inputs "model" (the base),
// "adapter.N" (applied at run time), "suite"; params {continuation_tokens}.
// Output reference.safetensors (docs/formats/reference-logits.md). Its key
// is (base, adapters, suite), so every candidate of a search, and every
// target with the same base, adapters and suite, shares one reference.
//
// FidelityRule ("fidelity"): inputs "model" (the artifact), "adapter.N"
// (its run-time adapters, for fusion: none), "reference". Output
// fidelity.json, which is also the report: mean and max KL and top-1
// agreement, overall and per case. Like the gate, the step succeeds whatever
// the figures; max_mean_kl and min_top1_agreement are checks on the report
// fields "mean KL" and "top-1 agreement", so changing them re-runs nothing.
// Both steps run the native engine whatever the gate's runner is.
#include "graph/rule.h"
#include "graph/target_kind.h"
#include "rules/gate.h"

namespace mb {

class ReferenceLogitsRule : public Rule {
 public:
  std::string_view kind() const override { return "reference_logits"; }
  int algorithm_version() const override { return 1; }
  Status run(StepContext& ctx) const override;
  Status check_params(const nlohmann::json& params) const override;
};

class FidelityRule : public Rule {
 public:
  std::string_view kind() const override { return "fidelity"; }
  int algorithm_version() const override { return 1; }
  Status run(StepContext& ctx) const override;
  Status check_params(const nlohmann::json& params) const override;
  std::vector<ReportField> report_fields() const override;
  bool judges() const override { return true; }
};

inline constexpr const char* kFidelityMark = "fidelity";
inline constexpr const char* kMeanKl = "mean KL";
inline constexpr const char* kTop1Agreement = "top-1 agreement";
// Reply tokens the reference generates per case (docs/gates.md, "Fidelity").
inline constexpr int kContinuationTokens = 32;

// The fidelity step of `model` against the reference of (reference_base,
// reference_adapters, the gate's suite), and its checks; step is -1 (and
// nothing is added) when the gate has neither max_mean_kl nor
// min_top1_agreement.
struct FidelityStep {
  int step = -1;
  std::vector<Check> checks;
};
Result<FidelityStep> add_fidelity_step(TargetExpansion& x, const GateDecl& gate, const InputRef& reference_base,
                                       const std::vector<InputRef>& reference_adapters, const InputRef& model,
                                       const std::vector<InputRef>& runtime_adapters, const std::string& role);

}  // namespace mb
