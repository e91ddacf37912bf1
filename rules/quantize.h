#pragma once
// QuantizeRule ("quantize"): model -> an mlx_lm model directory at `bits`
// (MLX affine quantization, tensors/quantize_model.h), or a float conversion
// to `dtype` when bits is null. Params: QuantizeParams (rules/model_params.h).
#include "graph/rule.h"

namespace mb {

class QuantizeRule : public Rule {
 public:
  std::string_view kind() const override { return "quantize"; }
  int algorithm_version() const override { return 1; }
  Status run(StepContext& ctx) const override;
  Status check_params(const nlohmann::json& params) const override;
};

}  // namespace mb
