#pragma once
// The parameters the model steps (fuse, quantize) share, parsed once into
// structs. Each struct's to_json() is what the model target planner writes
// into the step and parse() what the rule reads back: the JSON layout is
// part of every step key (docs/cache-format.md), so it must not change
// without bumping the rule's algorithm version.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/result.h"
#include "tensors/dtype.h"
#include "tensors/mlx_quant.h"

namespace mb {

// "float16" / "bfloat16" / "float32", or "auto" (the base's own float dtype).
Result<std::optional<DType>> dtype_from_param(const std::string& name);
// "gpu" (mlx_lm.convert on a Mac) or "cpu".
Result<QuantKernel> quantizer_from_param(const std::string& name);

// fuse: base + adapter.N -> a model. Inplace: re-quantize with the base's
// own bits ({mode, quantizer}). Dequantize: fuse in float to `dtype`, and
// with bits quantize in the same pass ({mode, dtype[, bits, group_size,
// quantizer]}).
struct FuseParams {
  bool inplace = false;
  std::string dtype = "auto";
  std::string quantizer = "gpu";
  std::optional<int> bits;
  int group_size = 64;

  nlohmann::json to_json() const;
  static Result<FuseParams> parse(const nlohmann::json& params);
};

// quantize: model -> a model at bits (or null: a float conversion to dtype);
// {bits, group_size, quantizer, dtype}.
struct QuantizeParams {
  std::optional<int> bits;
  int group_size = 64;
  std::string quantizer = "gpu";
  std::string dtype = "auto";

  nlohmann::json to_json() const;
  static Result<QuantizeParams> parse(const nlohmann::json& params);
};

// export: model (a float or MLX model directory) -> another format.
// {format: "gguf", gguf_type: "Q8_0"} writes build/TARGET/model.gguf
// (tensors/gguf_export.h); {format: "hf"} the Hugging Face layout
// (tensors/hf_export.h). A GGUF export of fused adapters also has the base
// and adapter.N as inputs, to measure the delta retention of the GGUF type.
struct ExportParams {
  std::string format;     // "gguf" or "hf"
  std::string gguf_type;  // with gguf: F16, BF16, Q8_0, Q4_0, Q4_K_M, Q5_K_M, Q6_K
  // gguf only: fuse the inputs base + adapter.N in dequantize mode to this
  // dtype ("auto" or a FuseParams dtype) in the export's own streaming
  // pass, instead of reading a fused float model from the input "model".
  // Absent from the JSON when unset, so other exports' keys do not change.
  std::optional<std::string> fuse_dtype;

  nlohmann::json to_json() const;
  static Result<ExportParams> parse(const nlohmann::json& params);
};

}  // namespace mb
