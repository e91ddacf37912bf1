// ModelConfig from GGUF metadata: the keys export writes (docs/formats/gguf.md,
// "Architecture metadata"), read back as config.json would give them.
#include <fmt/format.h>

#include <cstring>

#include "inference/gguf_model.h"

namespace mb::inference {

using OJson = nlohmann::ordered_json;

namespace {

class Keys {
 public:
  Keys(const GgufFile& file, std::string arch) : m_file(file), m_arch(std::move(arch)) {}

  Error bad(const std::string& key, const std::string& msg) const {
    return Error{Errc::kCorrupt, m_file.path().string(), fmt::format("{}: {}", key, msg)};
  }

  const OJson* find(const std::string& key) const {
    auto it = m_file.metadata().find(key);
    return it == m_file.metadata().end() ? nullptr : &*it;
  }

  // ARCH.`suffix` as a positive integer; `fallback` < 0 means required.
  Result<int64_t> positive(const std::string& suffix, int64_t fallback = -1) const {
    const std::string key = m_arch + "." + suffix;
    const OJson* v = find(key);
    if (!v) {
      if (fallback >= 0) return fallback;
      return bad(key, "missing");
    }
    if (!v->is_number_integer() || v->get<int64_t>() <= 0 || v->get<int64_t>() > INT32_MAX)
      return bad(key, fmt::format("expected a positive integer, got {}", v->dump()));
    return v->get<int64_t>();
  }

  Result<double> number(const std::string& suffix, double fallback) const {
    const std::string key = m_arch + "." + suffix;
    const OJson* v = find(key);
    if (!v) return fallback;
    if (!v->is_number()) return bad(key, fmt::format("expected a number, got {}", v->dump()));
    return v->get<double>();
  }

  const std::string& arch() const { return m_arch; }
  std::string where() const { return m_file.path().string(); }

 private:
  const GgufFile& m_file;
  std::string m_arch;
};

Result<Architecture> architecture(const GgufFile& file) {
  auto it = file.metadata().find("general.architecture");
  if (it == file.metadata().end() || !it->is_string())
    return Error{Errc::kCorrupt, file.path().string(), "general.architecture: missing or not a string"};
  const std::string a = it->get<std::string>();
  if (a == "qwen2") return Architecture::kQwen2;
  if (a == "llama") return Architecture::kLlama;
  if (a == "qwen3") return Architecture::kQwen3;
  return Error{Errc::kUnsupported, file.path().string(),
               fmt::format("general.architecture: \"{}\" is not supported (qwen2, llama, qwen3)", a)};
}

const char* architecture_class(Architecture a) {
  switch (a) {
    case Architecture::kQwen2:
      return "Qwen2ForCausalLM";
    case Architecture::kLlama:
      return "LlamaForCausalLM";
    case Architecture::kQwen3:
      return "Qwen3ForCausalLM";
  }
  return "?";
}

Status sizes(const Keys& k, ModelConfig& c) {
  int64_t v;
  MB_ASSIGN(v, k.positive("embedding_length"));
  c.hidden_size = static_cast<int>(v);
  MB_ASSIGN(v, k.positive("feed_forward_length"));
  c.intermediate_size = static_cast<int>(v);
  MB_ASSIGN(v, k.positive("block_count"));
  c.num_layers = static_cast<int>(v);
  MB_ASSIGN(v, k.positive("attention.head_count"));
  c.num_heads = static_cast<int>(v);
  MB_ASSIGN(v, k.positive("attention.head_count_kv", c.num_heads));
  c.num_kv_heads = static_cast<int>(v);
  MB_ASSIGN(c.max_position_embeddings, k.positive("context_length", 32768));
  const std::string heads_key = k.arch() + ".attention.head_count";
  if (c.hidden_size % c.num_heads != 0 && !k.find(k.arch() + ".attention.key_length"))
    return k.bad(heads_key, fmt::format("embedding_length {} is not a multiple of {}", c.hidden_size, c.num_heads));
  MB_ASSIGN(v, k.positive("attention.key_length", c.hidden_size / c.num_heads));
  c.head_dim = static_cast<int>(v);
  if (c.head_dim % 2 != 0) return k.bad(k.arch() + ".attention.key_length", "head size must be even");
  if (c.num_heads % c.num_kv_heads != 0)
    return k.bad(k.arch() + ".attention.head_count_kv",
                 fmt::format("{} heads are not a multiple of {} KV heads", c.num_heads, c.num_kv_heads));
  return Status();
}

Status rope_and_norm(const Keys& k, ModelConfig& c) {
  MB_ASSIGN(c.rope.theta, k.number("rope.freq_base", 10000.0));
  if (!(c.rope.theta > 1)) return k.bad(k.arch() + ".rope.freq_base", "must be > 1");
  double eps;
  MB_ASSIGN(eps, k.number("attention.layer_norm_rms_epsilon", 1e-6));
  if (!(eps > 0)) return k.bad(k.arch() + ".attention.layer_norm_rms_epsilon", "must be > 0");
  c.rms_norm_eps = static_cast<float>(eps);
  // llama.cpp's reading (llama-model.cpp, load_hparams): the type defaults
  // to linear, the factor comes from rope.scaling.factor or the older
  // rope.scale_linear, and an absent or zero factor means no scaling. So a
  // file with a factor and no type is scaled, as llama.cpp runs it.
  std::string type = "linear";
  if (const OJson* t = k.find(k.arch() + ".rope.scaling.type"))
    type = t->is_string() ? t->get<std::string>() : t->dump();
  if (type != "linear" && type != "none")
    return Error{Errc::kUnsupported, k.where(),
                 fmt::format("{}.rope.scaling.type: \"{}\" is not supported (none, linear)", k.arch(), type)};
  const char* factor_key = k.find(k.arch() + ".rope.scaling.factor") ? "rope.scaling.factor" : "rope.scale_linear";
  double factor;
  MB_ASSIGN(factor, k.number(factor_key, 0.0));
  if (!(factor >= 0)) return k.bad(k.arch() + "." + factor_key, "must be >= 0");
  if (type == "linear" && factor != 0 && factor != 1) {
    c.rope.type = RopeConfig::Type::kLinear;
    c.rope.factor = factor;
  }
  return Status();
}

}  // namespace

Result<ModelConfig> gguf_model_config(const GgufFile& file) {
  ModelConfig c;
  MB_ASSIGN(c.arch, architecture(file));
  c.architecture_class = architecture_class(c.arch);
  const Keys k(file, architecture_name(c.arch));
  MB_TRY(sizes(k, c));
  MB_TRY(rope_and_norm(k, c));
  if (const GgufTensorInfo* f = file.find("rope_freqs.weight")) {
    // Llama 3 rope scaling as llama.cpp stores it: one divisor per frequency.
    if (f->type != GgmlType::kF32 || f->dims != std::vector<uint64_t>{static_cast<uint64_t>(c.head_dim / 2)})
      return Error{Errc::kCorrupt, file.path().string(),
                   fmt::format("rope_freqs.weight: expected F32 [{}] (head size / 2)", c.head_dim / 2)};
    const std::span<const uint8_t> b = file.bytes(*f);
    c.rope.freq_factors.resize(c.head_dim / 2);
    std::memcpy(c.rope.freq_factors.data(), b.data(), c.rope.freq_factors.size() * 4);
    for (float x : c.rope.freq_factors)
      if (!(x > 0)) return Error{Errc::kCorrupt, file.path().string(), "rope_freqs.weight: factors must be > 0"};
  }
  const GgufTensorInfo* embed = file.find("token_embd.weight");
  if (!embed) return Error{Errc::kCorrupt, file.path().string(), "token_embd.weight: missing tensor"};
  if (embed->dims.size() != 2 || embed->dims[1] == 0 || embed->dims[1] > INT32_MAX)
    return Error{Errc::kCorrupt, file.path().string(), "token_embd.weight: expected [hidden, vocab] dimensions"};
  c.vocab_size = static_cast<int>(embed->dims[1]);
  c.tie_word_embeddings = file.find("output.weight") == nullptr;
  const bool q_bias = file.find("blk.0.attn_q.bias") != nullptr;
  switch (c.arch) {
    case Architecture::kQwen2:
      c.qkv_bias = true;
      break;
    case Architecture::kLlama:
      c.qkv_bias = q_bias;
      c.o_bias = file.find("blk.0.attn_output.bias") != nullptr;
      c.mlp_bias = file.find("blk.0.ffn_up.bias") != nullptr;
      break;
    case Architecture::kQwen3:
      c.qkv_bias = q_bias;
      c.o_bias = file.find("blk.0.attn_output.bias") != nullptr;
      c.qk_norm = true;
      break;
  }
  return c;
}

}  // namespace mb::inference
