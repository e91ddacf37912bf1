#pragma once
// The model target kind (`base:`): a base model, adapters applied in order,
// a fusion mode, bits, group size, dtype, quantizer and an optional gate
// (docs/recipes.md). It expands into the model steps:
//   adapters, fusion: none        the base as the artifact, the adapters as
//                                 run-time inputs (applied by the gate's engine)
//   adapters, fusion: inplace     fuse (re-quantizes with the base's own bits)
//   adapters, fusion: dequantize  fuse in float, to bits in the same pass
//   no adapters, bits or dtype    quantize
//   no adapters, neither          the base itself
// then a gate step on the artifact. Quantizing a fused delta adds a
// "delta retention" check when min_delta_retention is set; the gate adds an
// "accuracy" check. With `bits: auto` the target searches instead: one
// candidate (fuse to those bits, then gate) per (bits, group size), tried
// from the smallest on disk upward, the first that passes being the artifact
// (TargetPlan::candidates; rules/model_search.h). `format: gguf` with
// `gguf_type: auto` searches GGUF types the same way.
// With `format: gguf` or `format: hf` the float model so made (fused in
// float, converted to dtype, or the base itself) goes through one more
// step, an export (rules/export.h), whose output is the artifact: a GGUF
// export of fused adapters is where the delta retention is measured.
#include <optional>
#include <string>
#include <vector>

#include "graph/target_kind.h"
#include "rules/gate.h"

namespace mb {

enum class Fusion { kDequantize, kInplace, kNone };
const char* fusion_name(Fusion f);

// The artifact's format: an mlx_lm directory, one GGUF file, or the
// Hugging Face transformers layout.
enum class ModelFormat { kMlx, kGguf, kHf };
const char* model_format_name(ModelFormat f);

struct ModelSpec : TargetSpec {
  std::string base;                   // source or target name
  std::vector<std::string> adapters;  // source or target names, applied in order
  Fusion fusion = Fusion::kDequantize;
  std::optional<int> bits;  // nullopt = float
  int group_size = 64;
  // bits: auto: try these (bits, group size) pairs, smallest on disk first,
  // and keep the first that passes the gate (docs/recipes.md, "bits: auto").
  bool auto_bits = false;
  std::vector<std::pair<int, int>> candidates;
  std::optional<std::string> dtype;  // "float16", "bfloat16", "float32"
  std::string quantizer = "gpu";     // "gpu" (mlx_lm.convert on a Mac) or "cpu"
  std::optional<double> min_delta_retention;
  std::optional<GateDecl> gate;
  ModelFormat format = ModelFormat::kMlx;
  std::string gguf_type;  // with format: gguf, "Q8_0" etc. as recipes spell it, or "auto"
  // gguf_type: auto: try these GGUF types, smallest first, and keep the first
  // that passes the gate (docs/recipes.md, "gguf_type: auto").
  std::vector<std::string> gguf_candidates;
  bool auto_gguf() const { return gguf_type == "auto"; }

  Status expand(TargetExpansion& x) const override;
  Status preflight(const FileSystem& fs, const SourcePathFn& source_path) const override;
};

class ModelTargetKind : public TargetKind {
 public:
  std::string_view name() const override { return "model"; }
  std::string_view marker_key() const override { return "base"; }
  std::vector<std::string> keys() const override;
  std::vector<std::string> default_keys() const override;
  Result<std::shared_ptr<const TargetSpec>> parse(TargetReader& reader) const override;
};

}  // namespace mb
