#pragma once
// The model step kinds, thin adapters from StepContext to tensors/:
//   fuse      inputs base, adapter.N; params mode (dequantize|inplace), dtype
//             (dequantize), quantizer (inplace, or with bits). Dequantize
//             fusion with bits and group_size quantizes in the same
//             streaming pass. Whenever the fused weights are quantized
//             (in place or to bits) the step reports how much of the
//             adapters' weight change they kept (the delta retention).
//   quantize  input model; params bits (null = float conversion), group_size,
//             quantizer, dtype.
// Each writes an mlx_lm model directory into the output directory, and
// reports figures the engine's checks read.
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

}  // namespace mb
