#pragma once
// The model step kinds, thin adapters from StepContext to tensors/:
//   fuse      inputs base, adapter.N; params mode (dequantize|inplace), dtype
//             (dequantize), quantizer (inplace). In-place fusion reports the
//             delta retention it measured.
//   quantize  input model; params bits (null = float conversion), group_size,
//             quantizer, dtype.
//   retention inputs model, reference.base, reference.adapter.N: how much of
//             the adapters' weight change the model still carries.
// Each writes an mlx_lm model directory (or retention.json) into the output
// directory, and reports figures the engine's checks read.
#include "graph/rule.h"

namespace mb {

class FuseRule : public Rule {
 public:
  std::string_view kind() const override { return "fuse"; }
  int algorithm_version() const override { return 1; }
  Status run(StepContext& ctx) const override;
};

class QuantizeRule : public Rule {
 public:
  std::string_view kind() const override { return "quantize"; }
  int algorithm_version() const override { return 1; }
  Status run(StepContext& ctx) const override;
};

class RetentionRule : public Rule {
 public:
  std::string_view kind() const override { return "retention"; }
  // 2: proportionate verdict wording in retention.json.
  int algorithm_version() const override { return 2; }
  Status run(StepContext& ctx) const override;
};

}  // namespace mb
