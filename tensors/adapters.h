#pragma once
// Adapters: MLX and PEFT LoRA/DoRA adapters in one normalized form.
//
// An Adapter is a list of LoraModules, one per adapted module path
// ("model.layers.3.self_attn.q_proj", the mlx_lm/HF module path without any
// "base_model.model." prefix), each holding its factors in float32:
//
//   a          [rank, in]   row-major  (PEFT lora_A; MLX lora_a transposed)
//   b          [out, rank]  row-major  (PEFT lora_B; MLX lora_b transposed)
//   scale      the absolute scale s: delta = s · (b @ a), shape [out, in]
//   magnitude  [out] for DoRA, empty otherwise
//
// [out, in] is always the orientation of the base tensor "<module>.weight"
// as stored: Linear [out, in], Embedding [vocab, dims] (an embedding LoRA is
// normalized so that out = vocab, in = dims), and a PEFT fan_in_fan_out
// module (weight stored [in, out]) has its factors swapped and transposed at
// load, so every consumer computes one formula.
//
// Formats (docs/formats/adapters.md §1, §2):
//  - MLX: adapters.safetensors (<m>.lora_a [in,r], <m>.lora_b [r,out],
//    optional <m>.m [out]) + adapter_config.json (fine_tune_type lora|dora,
//    lora_parameters.rank/scale). The scale is absolute. A module whose last
//    path component contains "embed" is an embedding (lora_a [vocab,r],
//    lora_b [r,dims]), as mlx-lm's LoRAEmbedding stores it.
//  - PEFT: adapter_model.safetensors (base_model.model.<m>.lora_A.weight
//    [r,in], .lora_B.weight [out,r], .default. variants, DoRA
//    .lora_magnitude_vector [out], embeddings .lora_embedding_A [r,vocab] /
//    .lora_embedding_B [dims,r]) + adapter_config.json. Per module,
//    rank_pattern / alpha_pattern keys are tried in file order against
//    (.*\.)?(KEY)$ and the first match wins; scale = alpha/r, or
//    alpha/sqrt(r) with use_rslora.
// Anything that would change the math and is not implemented (MLX full
// fine-tuning, PEFT lora_bias, bias tensors, modules_to_save tensors, aLoRA,
// QALoRA, layer replication, MoE 3-D factors, DoRA on embeddings or with
// fan_in_fan_out, ...) is rejected with Errc::kUnsupported naming the field
// or tensor, never merged silently.
//
// Factor tensors may be F32, F16 or BF16 (converted exactly to f32).
// Adapters are small next to their base (rank 16 on every linear layer of a
// 0.5B model is ~35 MB in f32), so they are held in memory whole.
// An Adapter is immutable after loading and safe to share between threads.
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/fs.h"
#include "base/result.h"

namespace mb {

enum class AdapterFormat { kMlx, kPeft };
const char* adapter_format_name(AdapterFormat format);

struct LoraModule {
  std::string module;  // "model.layers.3.self_attn.q_proj"
  int64_t rank = 0;
  int64_t in = 0;
  int64_t out = 0;
  float scale = 1;
  std::vector<float> a;          // [rank, in]
  std::vector<float> b;          // [out, rank]
  std::vector<float> magnitude;  // [out] (DoRA) or empty
  bool is_dora() const { return !magnitude.empty(); }
  // The base tensor this module changes: module + ".weight".
  std::string weight_name() const { return module + ".weight"; }
};

struct Adapter {
  AdapterFormat format = AdapterFormat::kMlx;
  fs::path dir;
  fs::path weights_file;  // adapters.safetensors or adapter_model.safetensors
  bool dora = false;
  std::vector<LoraModule> modules;    // sorted by module path
  std::vector<std::string> warnings;  // non-fatal oddities, for the Reporter

  // nullptr when the adapter does not touch `module`.
  const LoraModule* find(std::string_view module) const;
};

// ---- Configuration (pure; exposed for tests) -------------------------------

// PEFT's per-module rank and alpha (docs/formats/adapters.md §2.2).
struct PeftConfig {
  int64_t r = 8;
  double lora_alpha = 8;
  bool use_rslora = false;
  bool use_dora = false;
  bool fan_in_fan_out = false;
  // In file order: the first key whose (.*\.)?(KEY)$ matches wins.
  std::vector<std::pair<std::string, int64_t>> rank_pattern;
  std::vector<std::pair<std::string, double>> alpha_pattern;
  std::vector<std::string> warnings;

  int64_t rank_for(const std::string& module) const;
  double alpha_for(const std::string& module) const;
  // alpha_m / r_m, or alpha_m / sqrt(r_m) with use_rslora, rounded to f32.
  float scale_for(const std::string& module) const;
};

// `where` names the file in errors. Rejects unknown peft_type and variant
// fields that change the merge (kUnsupported).
Result<PeftConfig> parse_peft_config(std::string_view json_text, const std::string& where);

struct MlxAdapterConfig {
  bool dora = false;
  int64_t rank = 8;
  float scale = 20;
  int64_t num_layers = 16;
  std::vector<std::string> keys;  // lora_parameters.keys, may be empty
};
Result<MlxAdapterConfig> parse_mlx_adapter_config(std::string_view json_text, const std::string& where);

// PEFT's pattern rule: does `module` match (.*\.)?(key)$ from its start?
// An invalid regex matches nothing (PEFT would have failed at training).
bool peft_pattern_matches(const std::string& key, const std::string& module);

// ---- Loading ---------------------------------------------------------------

// Detects the format from the files in `dir`: adapter_model.safetensors →
// PEFT, adapters.safetensors → MLX (with both present, a config holding
// "peft_type" decides). kNotFound when neither exists, kUnsupported for
// adapter_model.bin / adapters.npz only.
Result<AdapterFormat> detect_adapter_format(const FileSystem& fs, const fs::path& dir);

// Loads and validates the adapter by itself (factor shapes, ranks against the
// config, partner tensors present). Errors name the tensor and the file.
Result<Adapter> load_adapter(const FileSystem& fs, const fs::path& dir);
// load_adapter() for each directory, in order.
Result<std::vector<Adapter>> load_adapters(const FileSystem& fs, const std::vector<fs::path>& dirs);

// ---- Validation against a base model ---------------------------------------

// The logical [out, in] of base tensor `weight_name` (for an MLX-quantized
// tensor in = packed_cols·32/bits), or nullopt when the base has no such
// tensor. model_dir.h's BaseModel provides one (see fuse.h).
using BaseShapeLookup = std::function<std::optional<std::pair<int64_t, int64_t>>(const std::string& weight_name)>;

// Every module must exist in the base with [out, in] equal to the adapter's.
// `base_name` names the base in messages.
Status validate_adapter(const Adapter& adapter, const BaseShapeLookup& base_shape, const std::string& base_name);

}  // namespace mb
