#pragma once
// Model: a loaded decoder-only transformer (Qwen2, Llama, Qwen3) whose large
// matrices are views into mmapped safetensors files (float or MLX
// affine-quantized, per module), plus small f32 copies of norms and biases,
// plus runtime LoRA terms (y = W x + b + sum of scale * B (A x)), kept apart
// from W so adapters are applied without fusing.
//
// A Model is immutable after load_model() and may be shared by several
// Forward sessions; it owns (through `storage`) everything its views point to.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/result.h"
#include "inference/kernels.h"
#include "inference/model_config.h"
#include "inference/tensor_source.h"

namespace mb::inference {

// One adapter term on a linear module: delta(x) = scale * B (A x).
struct LoraTerm {
  WeightMatrix a;  // [rank, in], f32
  WeightMatrix b;  // [out, rank], f32
  float scale = 1;
  std::string source;  // adapter path, for messages
};

struct Linear {
  std::string name;  // "model.layers.0.self_attn.q_proj"
  WeightMatrix weight;
  std::vector<float> bias;  // empty when the module has none
  std::vector<LoraTerm> lora;
};

struct Layer {
  Linear q, k, v, o, gate, up, down;
  std::vector<float> input_norm, post_norm;
  std::vector<float> q_norm, k_norm;  // Qwen3 only
};

struct Model {
  ModelConfig config;
  WeightMatrix embed;  // [vocab, hidden]; may be quantized (rows dequantized on lookup)
  Linear lm_head;      // a view of embed when tie_word_embeddings
  std::vector<float> final_norm;
  std::vector<Layer> layers;

  // Keeps mappings and LoRA buffers alive for the views above.
  std::vector<std::shared_ptr<const void>> storage;

  // For summaries.
  int64_t parameters = 0;
  uint64_t weight_bytes = 0;
  std::string weight_format;  // "bf16", "q4 gs64", "q4 gs64 + q8 gs64"

  Model() = default;
  Model(Model&&) = default;
  Model& operator=(Model&&) = default;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // Every linear module, in load order (for adapters and summaries).
  std::vector<Linear*> linears();
};

// Builds a model from its config and tensors (views into `source`'s bytes,
// which the caller keeps alive through Model::storage). Errors name the
// tensor at fault: missing, wrong shape, unsupported dtype, or quantized
// against the config's rule.
Result<Model> build_model(const ModelConfig& config, const TensorSource& source, const QuantRule& quant);

// Loads config.json and the safetensors weights of an mlx-lm / Hugging Face
// model directory.
Result<Model> load_model(const FileSystem& fs, const fs::path& model_dir);

}  // namespace mb::inference
