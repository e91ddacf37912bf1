#pragma once
// ExportRule ("export"): model -> another format, the last step of a model
// target with `format: gguf` or `format: hf` (docs/recipes.md, "format").
// Params: ExportParams (rules/model_params.h).
//   gguf: writes exactly one file, model.gguf, with tensors/gguf_export.h's
//         export_gguf (docs/formats/gguf.md). When the step also has the
//         base and adapters as inputs (a fused model), it measures how much
//         of the adapters' weight change the GGUF type kept, from the bytes
//         it wrote: the report field "delta retention", as the fuse rule
//         reports it for MLX bits. With param fuse_dtype the step has no
//         "model" input: it fuses base + adapters itself in the export's
//         streaming pass (tensors/tensor_source.h), writing the same bytes
//         as an export of the fused float model, with none written.
//   hf:   writes the Hugging Face layout with tensors/hf_export.h's
//         export_hf (docs/formats/hf-layout.md); lossless for a float model.
#include "graph/rule.h"

namespace mb {

class ExportRule : public Rule {
 public:
  std::string_view kind() const override { return "export"; }
  int algorithm_version() const override { return 1; }
  Status run(StepContext& ctx) const override;
  Status check_params(const nlohmann::json& params) const override;
  std::vector<ReportField> report_fields() const override;
};

// The one file of a GGUF export's output (and so of build/TARGET/).
inline constexpr const char* kGgufFileName = "model.gguf";

}  // namespace mb
