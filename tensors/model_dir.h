#pragma once
// The mlx_lm model-directory layout (docs/formats/mlx-lm-layout.md): reading config.json's
// quantization settings the way mlx_lm's loader does, and writing a model
// directory (shards, index, config, carried-over tokenizer files) the way
// mlx_lm's save() does, deterministically.
//
// Reading: ModelDir bundles config.json and the ModelWeights; a
// QuantizationConfig answers "is module P quantized, and how": a per-layer
// entry in config["quantization"] wins (a dict gives the parameters, with
// MLX's mode defaults for missing or null fields; false or {} means not
// quantized; true means the top-level parameters); otherwise P is quantized
// with the top-level parameters iff P.scales exists in the weights.
//
// Writing: plan_shards() assigns tensors to shards from names, dtypes and
// shapes alone, so a ModelDirWriter can create every shard up front and
// accept tensor bytes in any order from any thread (streaming fusion); its
// finish() writes model.safetensors.index.json and config.json. Files are
// written to temp names and renamed; the directory itself is the caller's
// (usually a step's staging directory).
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/fs.h"
#include "base/result.h"
#include "tensors/model_weights.h"
#include "tensors/safetensors_writer.h"

namespace mb {

inline constexpr uint64_t kDefaultMaxShardBytes = uint64_t{5} << 30;  // mlx_lm's 5 GiB
inline constexpr int kDefaultGroupSize = 64;                          // MLX affine defaults
inline constexpr int kDefaultBits = 4;

// How one module is quantized.
struct LayerQuant {
  int bits = kDefaultBits;
  int group_size = kDefaultGroupSize;
  std::string mode = "affine";
  bool operator==(const LayerQuant&) const = default;
};

class QuantizationConfig {
 public:
  // Reads config["quantization"], else config["quantization_config"] when
  // it is an MLX object (has bits/group_size and no quant_method). Absent:
  // present() is false. kInvalidInput for malformed values and kUnsupported
  // for a quant_method (awq, gptq, bitnet, ...). `where` names config.json.
  static Result<QuantizationConfig> from_config(const nlohmann::ordered_json& config, std::string_view where);
  // A uniform configuration.
  static QuantizationConfig uniform(const LayerQuant& params);

  bool present() const { return m_present; }
  const LayerQuant& defaults() const { return m_defaults; }
  // The per-layer entries: nullopt means "not quantized" (false or {}).
  const std::map<std::string, std::optional<LayerQuant>>& overrides() const { return m_overrides; }
  void set_override(const std::string& module_path, std::optional<LayerQuant> params);

  // mlx_lm's rule for module `module_path` ("model.layers.0.mlp.down_proj").
  // `has_scales`: whether module_path + ".scales" is among the weights.
  std::optional<LayerQuant> for_module(std::string_view module_path, bool has_scales) const;

  // The object mlx_lm writes: {"group_size","bits","mode"} then the
  // per-layer entries in sorted order (false for unquantized ones).
  nlohmann::ordered_json to_json() const;

 private:
  bool m_present = false;
  LayerQuant m_defaults;
  std::map<std::string, std::optional<LayerQuant>> m_overrides;
};

// Sets config["quantization"] and config["quantization_config"] to
// q.to_json(), or removes both when q is null or not present().
void set_quantization(nlohmann::ordered_json& config, const QuantizationConfig* q);

// "model.layers.0.mlp.down_proj.weight" -> "model.layers.0.mlp.down_proj";
// a name without a dot is returned whole.
std::string_view module_of(std::string_view tensor_name);

class ModelDir {
 public:
  // Reads config.json (required), applying mlx_lm's load_config rule: a
  // truthy eos_token_id in generation_config.json replaces the config's.
  // Then opens the weights and the quantization config.
  static Result<ModelDir> open(const FileSystem& fs, const fs::path& dir);

  const fs::path& dir() const { return m_dir; }
  const nlohmann::ordered_json& config() const { return m_config; }
  const QuantizationConfig& quantization() const { return m_quant; }
  const ModelWeights& weights() const { return m_weights; }
  // for_module() with has_scales taken from the weights.
  std::optional<LayerQuant> module_quant(std::string_view module_path) const;

 private:
  fs::path m_dir;
  nlohmann::ordered_json m_config;
  QuantizationConfig m_quant;
  ModelWeights m_weights;
};

struct ShardPlan {
  struct Shard {
    std::string file_name;
    std::vector<TensorDecl> tensors;  // in the declared order
    uint64_t nbytes = 0;
  };
  std::vector<Shard> shards;
  std::map<std::string, std::string> weight_map;  // tensor -> shard file
  uint64_t total_size = 0;
  uint64_t total_parameters = 0;
};

// Walks `tensors` in the given order (pass a deterministic one), starting a
// new shard whenever the next tensor would push the current one past
// `max_shard_bytes` (mlx_lm's make_shards, minus its empty first shard when
// the first tensor alone is too big). total_parameters counts a quantized
// module (one with .scales) as weight.numel*32/bits plus its other
// non-scales/biases tensors, the bits coming from `quant` (default 4).
// kInvalidInput on duplicate names or bad shapes.
Result<ShardPlan> plan_shards(const std::vector<TensorDecl>& tensors, uint64_t max_shard_bytes,
                              const QuantizationConfig& quant);

// Which program's conventions the directory follows. kMlx: mlx_lm's save()
// (docs/formats/mlx-lm-layout.md). kHuggingFace: transformers'
// save_pretrained (docs/formats/hf-layout.md): shards tagged
// {"format":"pt"}, config.json and the index as transformers writes them
// (indent 2, sorted keys, trailing newline), the index only when there is
// more than one shard. The tensors are the caller's either way.
enum class DirLayout { kMlx, kHuggingFace };

struct ModelDirOptions {
  uint64_t max_shard_bytes = kDefaultMaxShardBytes;
  // When set, finish() carries over its side files (see side_files()).
  std::optional<fs::path> source_dir;
  DirLayout layout = DirLayout::kMlx;
};

class ModelDirWriter {
 public:
  // Plans shards and creates every shard file with its header. `config` is
  // written by finish() after mlx_lm's save_config normalization; its
  // quantization object (if any) also gives the bits for total_parameters.
  // REQUIRES: out_dir exists.
  static Result<std::unique_ptr<ModelDirWriter>> create(FileSystem& fs, const fs::path& out_dir,
                                                        const std::vector<TensorDecl>& tensors,
                                                        nlohmann::ordered_json config,
                                                        const ModelDirOptions& options = {});

  const ShardPlan& plan() const { return m_plan; }
  // Thread-safe; any order. kInvalidInput for an unknown name or wrong size.
  Status write_tensor(std::string_view name, std::span<const std::byte> bytes);
  Status write_tensor_part(std::string_view name, uint64_t offset, std::span<const std::byte> bytes);
  // Finishes every shard, writes the index and config.json, links side files.
  Status finish();

 private:
  ModelDirWriter(FileSystem& fs, fs::path out_dir, ShardPlan plan, nlohmann::ordered_json config,
                 ModelDirOptions options);

  FileSystem& m_fs;
  fs::path m_out_dir;
  ShardPlan m_plan;
  nlohmann::ordered_json m_config;
  ModelDirOptions m_options;
  std::vector<std::unique_ptr<SafetensorsWriter>> m_writers;  // one per shard
  std::map<std::string, size_t, std::less<>> m_shard_of;
};

// mlx_lm's save_config: drops _name_or_path and vision_config, mirrors
// quantization into quantization_config, sorts top-level keys, indent 4,
// ASCII-escaped like Python's json.dump.
std::string format_config_json(nlohmann::ordered_json config);
// model.safetensors.index.json for a plan, byte-compatible with mlx_lm.
std::string format_index_json(const ShardPlan& plan);
// The same two files as transformers' save_pretrained writes them: MLX's
// quantization fields and _name_or_path dropped, keys sorted, indent 2,
// ASCII-escaped, one trailing newline (docs/formats/hf-layout.md §3, §4).
std::string format_hf_config_json(nlohmann::ordered_json config);
std::string format_hf_index_json(const ShardPlan& plan);

// Names of the files in `src_dir` a converted model carries over: *.json
// (except config.json and *.safetensors.index.json), *.py, *.txt, *.jsonl,
// *.jinja, *.tiktoken, tokenizer.model, tiktoken.model. Sorted.
Result<std::vector<std::string>> side_files(const FileSystem& fs, const fs::path& src_dir);
// link_or_copy()s every side file into out_dir, replacing existing ones.
Status carry_over_side_files(FileSystem& fs, const fs::path& src_dir, const fs::path& out_dir);

}  // namespace mb
