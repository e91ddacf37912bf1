#pragma once
// ModelConfig: the architecture facts of a Hugging Face / mlx-lm config.json
// that the forward pass needs (Qwen2, Llama, Qwen3), validated once so the
// rest of the engine can trust them.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace mb::inference {

enum class Architecture { kQwen2, kLlama, kQwen3 };
const char* architecture_name(Architecture a);  // "qwen2", "llama", "qwen3"

struct RopeConfig {
  enum class Type { kDefault, kLinear, kLlama3 };
  Type type = Type::kDefault;
  double theta = 10000.0;
  double factor = 1.0;                   // kLinear, kLlama3
  double low_freq_factor = 1.0;          // kLlama3
  double high_freq_factor = 4.0;         // kLlama3
  double original_max_positions = 8192;  // kLlama3
  // GGUF rope_freqs.weight (how GGUF stores Llama 3 scaling): when set,
  // frequency i is divided by freq_factors[i] instead of applying `type`.
  std::vector<float> freq_factors;
};

struct ModelConfig {
  Architecture arch = Architecture::kQwen2;
  std::string architecture_class;  // "Qwen2ForCausalLM"
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int vocab_size = 0;
  int64_t max_position_embeddings = 0;
  float rms_norm_eps = 1e-6f;
  RopeConfig rope;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;               // Qwen2: always; Llama/Qwen3: attention_bias
  bool o_bias = false;                 // Llama/Qwen3 attention_bias
  bool mlp_bias = false;               // Llama mlp_bias
  bool qk_norm = false;                // Qwen3
  std::vector<int32_t> eos_token_ids;  // config.json eos_token_id, if any
};

// Parses config.json text; `where` (the file's path) prefixes every error.
// An unsupported architecture or feature is Errc::kUnsupported naming the value.
Result<ModelConfig> parse_model_config(std::string_view json_text, const std::string& where);

// RoPE inverse frequencies (head_dim / 2 of them), with rope scaling applied.
std::vector<double> rope_inv_freq(const RopeConfig& rope, int head_dim);

}  // namespace mb::inference
