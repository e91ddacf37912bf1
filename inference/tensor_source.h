#pragma once
// TensorSource: the named tensors the model builder reads (a model
// directory's safetensors shards, a GGUF file, or an in-memory set in
// tests), plus the
// per-module quantization rule of config.json. The builder only ever sees
// this interface, so it does not care how files are mapped.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "tensors/ggml_quants.h"

namespace mb::inference {

struct TensorData {
  std::string dtype;  // safetensors dtype string: "F32", "BF16", "F16", "U32", ...; ggml's name for blocks
  std::vector<int64_t> shape;
  std::span<const std::byte> bytes;  // valid while the source lives
  std::optional<GgmlType> ggml;      // set for ggml block types (GGUF Q8_0, Q4_K, ...)
};

class TensorSource {
 public:
  virtual ~TensorSource() = default;
  // nullptr when absent.
  virtual const TensorData* find(const std::string& name) const = 0;
  // Where a tensor lives, for error messages ("dir/model.safetensors").
  virtual std::string location(const std::string& name) const = 0;
};

struct QuantParams {
  int bits = 4;
  int group_size = 64;
};

// config.json "quantization" as mlx-lm applies it (docs/formats/mlx-lm-layout.md §2): a
// per-module entry wins (false = not quantized); otherwise a module is
// quantized with the top-level parameters iff "<module>.scales" exists.
class QuantRule {
 public:
  virtual ~QuantRule() = default;
  virtual Result<std::optional<QuantParams>> params_for(const std::string& module, bool has_scales) const = 0;
};

}  // namespace mb::inference
