#include "inference/model_config.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <numbers>

namespace mb::inference {

using nlohmann::json;

const char* architecture_name(Architecture a) {
  switch (a) {
    case Architecture::kQwen2:
      return "qwen2";
    case Architecture::kLlama:
      return "llama";
    case Architecture::kQwen3:
      return "qwen3";
  }
  return "?";
}

namespace {

Error bad(const std::string& where, const std::string& msg) { return Error{Errc::kInvalidInput, where, msg}; }

// A positive integer field; `fallback` < 0 means required.
Result<int64_t> get_int(const json& j, const char* key, const std::string& where, int64_t fallback = -1) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (fallback >= 0) return fallback;
    return bad(where, fmt::format("missing \"{}\"", key));
  }
  if (!it->is_number_integer() || it->get<int64_t>() <= 0)
    return bad(where, fmt::format("\"{}\" must be a positive integer, got {}", key, it->dump()));
  return it->get<int64_t>();
}

Result<double> get_number(const json& j, const char* key, const std::string& where, double fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number()) return bad(where, fmt::format("\"{}\" must be a number, got {}", key, it->dump()));
  return it->get<double>();
}

Result<bool> get_bool(const json& j, const char* key, const std::string& where, bool fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return bad(where, fmt::format("\"{}\" must be true or false, got {}", key, it->dump()));
  return it->get<bool>();
}

// A string field, or "" when absent or not a string.
std::string get_string(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Result<RopeConfig> parse_rope(const json& j, const std::string& where) {
  RopeConfig rope;
  // Newer transformers nest theta and scaling under rope_parameters.
  const json* params = nullptr;
  if (auto it = j.find("rope_parameters"); it != j.end() && it->is_object()) params = &*it;
  MB_ASSIGN(rope.theta, get_number(params ? *params : j, "rope_theta", where, 10000.0));
  if (params && !params->contains("rope_theta")) {
    MB_ASSIGN(rope.theta, get_number(j, "rope_theta", where, 10000.0));
  }
  if (!(rope.theta > 1)) return bad(where, fmt::format("\"rope_theta\" must be > 1, got {}", rope.theta));
  const json* scaling = params;
  if (auto it = j.find("rope_scaling"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return bad(where, "\"rope_scaling\" must be an object or null");
    scaling = &*it;
  }
  if (!scaling) return rope;
  std::string type = "default";
  for (const char* key : {"rope_type", "type"})
    if (auto it = scaling->find(key); it != scaling->end() && it->is_string()) {
      type = it->get<std::string>();
      break;
    }
  if (type == "default") return rope;
  MB_ASSIGN(rope.factor, get_number(*scaling, "factor", where, 1.0));
  if (!(rope.factor > 0)) return bad(where, "rope_scaling \"factor\" must be > 0");
  if (type == "linear") {
    rope.type = RopeConfig::Type::kLinear;
    return rope;
  }
  if (type == "llama3") {
    rope.type = RopeConfig::Type::kLlama3;
    MB_ASSIGN(rope.low_freq_factor, get_number(*scaling, "low_freq_factor", where, 1.0));
    MB_ASSIGN(rope.high_freq_factor, get_number(*scaling, "high_freq_factor", where, 4.0));
    MB_ASSIGN(rope.original_max_positions, get_number(*scaling, "original_max_position_embeddings", where, 8192));
    if (!(rope.high_freq_factor > rope.low_freq_factor) || !(rope.low_freq_factor > 0))
      return bad(where, "rope_scaling llama3 needs 0 < low_freq_factor < high_freq_factor");
    return rope;
  }
  return Error{Errc::kUnsupported, where,
               fmt::format("unsupported rope scaling type \"{}\" (supported: default, linear, llama3)", type)};
}

}  // namespace

Result<ModelConfig> parse_model_config(std::string_view json_text, const std::string& where) {
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Error{Errc::kCorrupt, where, "not a JSON object"};
  ModelConfig c;
  std::string arch_name;
  if (auto it = j.find("architectures"); it != j.end() && it->is_array() && !it->empty() && (*it)[0].is_string())
    arch_name = (*it)[0].get<std::string>();
  std::string model_type = get_string(j, "model_type");
  if (arch_name == "Qwen2ForCausalLM" || (arch_name.empty() && model_type == "qwen2")) {
    c.arch = Architecture::kQwen2;
  } else if (arch_name == "LlamaForCausalLM" || (arch_name.empty() && model_type == "llama")) {
    c.arch = Architecture::kLlama;
  } else if (arch_name == "Qwen3ForCausalLM" || (arch_name.empty() && model_type == "qwen3")) {
    c.arch = Architecture::kQwen3;
  } else {
    std::string what = !arch_name.empty()    ? fmt::format("architecture \"{}\"", arch_name)
                       : !model_type.empty() ? fmt::format("model_type \"{}\"", model_type)
                                             : std::string("architecture (no \"architectures\" or \"model_type\")");
    return Error{Errc::kUnsupported, where,
                 fmt::format("unsupported {}; supported: Qwen2ForCausalLM, LlamaForCausalLM, Qwen3ForCausalLM", what)};
  }
  c.architecture_class = arch_name.empty() ? std::string(architecture_name(c.arch)) : arch_name;

  int64_t v;
  MB_ASSIGN(v, get_int(j, "hidden_size", where));
  c.hidden_size = static_cast<int>(v);
  MB_ASSIGN(v, get_int(j, "intermediate_size", where));
  c.intermediate_size = static_cast<int>(v);
  MB_ASSIGN(v, get_int(j, "num_hidden_layers", where));
  c.num_layers = static_cast<int>(v);
  MB_ASSIGN(v, get_int(j, "num_attention_heads", where));
  c.num_heads = static_cast<int>(v);
  MB_ASSIGN(v, get_int(j, "num_key_value_heads", where, c.num_heads));
  c.num_kv_heads = static_cast<int>(v);
  MB_ASSIGN(v, get_int(j, "vocab_size", where));
  c.vocab_size = static_cast<int>(v);
  MB_ASSIGN(c.max_position_embeddings, get_int(j, "max_position_embeddings", where, 32768));
  if (c.hidden_size % c.num_heads != 0 && !j.contains("head_dim"))
    return bad(where,
               fmt::format("hidden_size {} is not a multiple of num_attention_heads {}", c.hidden_size, c.num_heads));
  MB_ASSIGN(v, get_int(j, "head_dim", where, c.hidden_size / c.num_heads));
  c.head_dim = static_cast<int>(v);
  if (c.head_dim % 2 != 0) return bad(where, fmt::format("head_dim {} must be even", c.head_dim));
  if (c.num_heads % c.num_kv_heads != 0)
    return bad(where, fmt::format("num_attention_heads {} is not a multiple of num_key_value_heads {}", c.num_heads,
                                  c.num_kv_heads));
  double eps;
  MB_ASSIGN(eps, get_number(j, "rms_norm_eps", where, 1e-6));
  if (!(eps > 0)) return bad(where, "\"rms_norm_eps\" must be > 0");
  c.rms_norm_eps = static_cast<float>(eps);
  MB_ASSIGN(c.rope, parse_rope(j, where));
  MB_ASSIGN(c.tie_word_embeddings, get_bool(j, "tie_word_embeddings", where, false));

  if (auto act = get_string(j, "hidden_act"); !act.empty() && act != "silu")
    return Error{Errc::kUnsupported, where, fmt::format("unsupported hidden_act \"{}\" (only silu)", act)};
  bool sliding;
  MB_ASSIGN(sliding, get_bool(j, "use_sliding_window", where, false));
  if (sliding) return Error{Errc::kUnsupported, where, "use_sliding_window: true is not supported"};

  bool attention_bias;
  MB_ASSIGN(attention_bias, get_bool(j, "attention_bias", where, false));
  switch (c.arch) {
    case Architecture::kQwen2:
      c.qkv_bias = true;  // Qwen2 always has q/k/v biases and no o_proj bias
      break;
    case Architecture::kLlama: {
      c.qkv_bias = c.o_bias = attention_bias;
      MB_ASSIGN(c.mlp_bias, get_bool(j, "mlp_bias", where, false));
      break;
    }
    case Architecture::kQwen3:
      c.qkv_bias = c.o_bias = attention_bias;
      c.qk_norm = true;
      break;
  }

  if (auto it = j.find("eos_token_id"); it != j.end()) {
    if (it->is_number_integer()) {
      c.eos_token_ids.push_back(it->get<int32_t>());
    } else if (it->is_array()) {
      for (const auto& e : *it)
        if (e.is_number_integer()) c.eos_token_ids.push_back(e.get<int32_t>());
    }
  }
  return c;
}

std::vector<double> rope_inv_freq(const RopeConfig& rope, int head_dim) {
  std::vector<double> f(head_dim / 2);
  for (int i = 0; i < head_dim / 2; ++i) f[i] = std::pow(rope.theta, -2.0 * i / head_dim);
  if (!rope.freq_factors.empty()) {
    for (size_t i = 0; i < f.size() && i < rope.freq_factors.size(); ++i) f[i] /= rope.freq_factors[i];
    return f;
  }
  if (rope.type == RopeConfig::Type::kLinear) {
    for (auto& x : f) x /= rope.factor;
  } else if (rope.type == RopeConfig::Type::kLlama3) {
    const double low_wavelen = rope.original_max_positions / rope.low_freq_factor;
    const double high_wavelen = rope.original_max_positions / rope.high_freq_factor;
    for (auto& x : f) {
      const double wavelen = 2 * std::numbers::pi / x;
      if (wavelen < high_wavelen) continue;
      if (wavelen > low_wavelen) {
        x /= rope.factor;
      } else {
        const double smooth = (rope.original_max_positions / wavelen - rope.low_freq_factor) /
                              (rope.high_freq_factor - rope.low_freq_factor);
        x = (1 - smooth) * x / rope.factor + smooth * x;
      }
    }
  }
  return f;
}

}  // namespace mb::inference
