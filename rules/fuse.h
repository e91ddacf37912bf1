#pragma once
// FuseRule ("fuse"): base + adapter.N -> an mlx_lm model directory
// (tensors/fuse.h). Params: FuseParams (rules/model_params.h). Dequantize
// fusion with bits quantizes in the same streaming pass. Whenever the fused
// weights are quantized (in place or to bits) the step reports how much of
// the adapters' weight change they kept: the report field "delta retention"
// (/retention/retained), which min_delta_retention checks.
#include "graph/rule.h"

namespace mb {

class FuseRule : public Rule {
 public:
  std::string_view kind() const override { return "fuse"; }
  int algorithm_version() const override { return 1; }
  Status run(StepContext& ctx) const override;
  Status check_params(const nlohmann::json& params) const override;
  std::vector<ReportField> report_fields() const override;
};

// The report field of a fuse step that quantizes fused weights, and the
// mark under which a model target names that step (TargetPlan::marks).
inline constexpr const char* kDeltaRetention = "delta retention";
inline constexpr const char* kRetentionMark = "retention";

}  // namespace mb
