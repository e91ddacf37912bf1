#pragma once
// Test helpers: GGUF files written from a loaded Model (any storage: its
// matrices are read back through gather_row) or from random weights, with
// the tokenizer metadata of a model directory, through GgufWriter. The
// names and the llama q/k permutation are written out here independently of
// the loader's (docs/formats/gguf.md, "Tensor names"), so a mistake in
// either shows up as a test failure.
#include <fmt/format.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "base/fs.h"
#include "inference/kernels.h"
#include "inference/model.h"
#include "inference/tokenizer.h"
#include "tensors/gguf_writer.h"

namespace mb::inference::test {

struct FloatTensor {
  std::vector<int64_t> shape;  // [rows, cols] or [n]
  std::vector<float> values;
};
using FloatModel = std::map<std::string, FloatTensor>;  // Hugging Face names

inline FloatTensor matrix_values(const WeightMatrix& w) {
  FloatTensor t{{w.rows, w.cols}, std::vector<float>(w.rows * w.cols)};
  for (int64_t r = 0; r < w.rows; ++r) gather_row(w, r, t.values.data() + r * w.cols);
  return t;
}

inline FloatModel float_model(const Model& m) {
  FloatModel out;
  auto vec = [&](const std::string& name, const std::vector<float>& v) {
    if (!v.empty()) out[name] = {{static_cast<int64_t>(v.size())}, v};
  };
  out["model.embed_tokens.weight"] = matrix_values(m.embed);
  if (!m.config.tie_word_embeddings) out["lm_head.weight"] = matrix_values(m.lm_head.weight);
  vec("model.norm.weight", m.final_norm);
  for (size_t i = 0; i < m.layers.size(); ++i) {
    const Layer& l = m.layers[i];
    const std::string p = fmt::format("model.layers.{}.", i);
    vec(p + "input_layernorm.weight", l.input_norm);
    vec(p + "post_attention_layernorm.weight", l.post_norm);
    vec(p + "self_attn.q_norm.weight", l.q_norm);
    vec(p + "self_attn.k_norm.weight", l.k_norm);
    const std::pair<const char*, const Linear*> linears[] = {
        {"self_attn.q_proj", &l.q}, {"self_attn.k_proj", &l.k}, {"self_attn.v_proj", &l.v}, {"self_attn.o_proj", &l.o},
        {"mlp.gate_proj", &l.gate}, {"mlp.up_proj", &l.up},     {"mlp.down_proj", &l.down}};
    for (const auto& [name, lin] : linears) {
      out[p + name + ".weight"] = matrix_values(lin->weight);
      vec(p + name + ".bias", lin->bias);
    }
  }
  return out;
}

// Normal(0, scale) weights, norms near 1, for every tensor of `c`.
inline FloatModel random_model(const ModelConfig& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0, 1);
  FloatModel out;
  auto fill = [&](const std::string& name, std::vector<int64_t> shape, float scale, float offset) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    FloatTensor t{shape, std::vector<float>(n)};
    for (float& v : t.values) v = offset + scale * nd(rng);
    out[name] = std::move(t);
  };
  const int64_t h = c.hidden_size, q = int64_t{c.num_heads} * c.head_dim, kv = int64_t{c.num_kv_heads} * c.head_dim;
  fill("model.embed_tokens.weight", {c.vocab_size, h}, 0.5f, 0);
  if (!c.tie_word_embeddings) fill("lm_head.weight", {c.vocab_size, h}, 0.1f, 0);
  fill("model.norm.weight", {h}, 0.1f, 1);
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    fill(p + "input_layernorm.weight", {h}, 0.1f, 1);
    fill(p + "post_attention_layernorm.weight", {h}, 0.1f, 1);
    const float s = 1.0f / std::sqrt(static_cast<float>(h));
    fill(p + "self_attn.q_proj.weight", {q, h}, s, 0);
    fill(p + "self_attn.k_proj.weight", {kv, h}, s, 0);
    fill(p + "self_attn.v_proj.weight", {kv, h}, s, 0);
    fill(p + "self_attn.o_proj.weight", {h, q}, s, 0);
    if (c.qkv_bias)
      for (const char* b : {"q", "k", "v"}) fill(p + "self_attn." + b + "_proj.bias", {b[0] == 'q' ? q : kv}, 0.1f, 0);
    if (c.qk_norm) {
      fill(p + "self_attn.q_norm.weight", {c.head_dim}, 0.1f, 1);
      fill(p + "self_attn.k_norm.weight", {c.head_dim}, 0.1f, 1);
    }
    fill(p + "mlp.gate_proj.weight", {c.intermediate_size, h}, s, 0);
    fill(p + "mlp.up_proj.weight", {c.intermediate_size, h}, s, 0);
    fill(p + "mlp.down_proj.weight", {h, c.intermediate_size}, 1.0f / std::sqrt(float(c.intermediate_size)), 0);
  }
  return out;
}

inline std::string test_gguf_name(const std::string& hf) {
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  static const std::pair<const char*, const char*> kParts[] = {
      {"input_layernorm", "attn_norm"},    {"post_attention_layernorm", "ffn_norm"},
      {"self_attn.q_proj", "attn_q"},      {"self_attn.k_proj", "attn_k"},
      {"self_attn.v_proj", "attn_v"},      {"self_attn.o_proj", "attn_output"},
      {"self_attn.q_norm", "attn_q_norm"}, {"self_attn.k_norm", "attn_k_norm"},
      {"mlp.gate_proj", "ffn_gate"},       {"mlp.up_proj", "ffn_up"},
      {"mlp.down_proj", "ffn_down"}};
  const size_t a = std::string("model.layers.").size(), b = hf.find('.', a), e = hf.rfind('.');
  const std::string mid = hf.substr(b + 1, e - b - 1);
  for (const auto& [from, to] : kParts)
    if (mid == from) return "blk." + hf.substr(a, b - a) + "." + to + hf.substr(e);
  return "";
}

// llama.cpp's row order for llama q/k: within each head, HF rows 0, D/2, 1, D/2+1, ...
inline std::vector<float> permute_for_llama(const FloatTensor& t, int64_t head_dim) {
  const int64_t rows = t.shape[0], cols = t.shape.size() > 1 ? t.shape[1] : 1;
  std::vector<float> out(t.values.size());
  for (int64_t g = 0; g < rows; ++g) {
    const int64_t head = g / head_dim, within = g % head_dim;
    const int64_t hf = head * head_dim + (within % 2) * (head_dim / 2) + within / 2;
    std::copy_n(t.values.data() + hf * cols, cols, out.data() + g * cols);
  }
  return out;
}

// The tokenizer.* keys for the tokenizer files of `dir`.
inline void add_tokenizer_metadata(GgufMetadata& md, const fs::path& dir, const std::string& pre) {
  auto fs = make_real_file_system();
  Tokenizer tok = Tokenizer::load(*fs, dir / "tokenizer.json").value();
  TokenizerConfig tc = load_tokenizer_config(*fs, dir, tok).value();
  auto json = nlohmann::json::parse(fs->read_file(dir / "tokenizer.json").value());
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    const std::string& t = tok.id_to_token(id);
    tokens.push_back(t.empty() ? fmt::format("[PAD{}]", id) : t);
    types.push_back(t.empty() ? 5 : !tok.is_added(id) ? 1 : tok.is_special(id) ? 3 : 4);
  }
  std::vector<std::string> merges;
  for (const auto& m : json["model"]["merges"])
    merges.push_back(m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>());
  md.add_string("tokenizer.ggml.model", "gpt2");
  md.add_string("tokenizer.ggml.pre", pre);
  md.add_strings("tokenizer.ggml.tokens", tokens);
  md.add_i32s("tokenizer.ggml.token_type", types);
  md.add_strings("tokenizer.ggml.merges", merges);
  if (tc.eos) md.add_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(*tc.eos));
  if (tc.pad) md.add_u32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(*tc.pad));
  md.add_bool("tokenizer.ggml.add_bos_token", false);
  md.add_string("tokenizer.chat_template", tc.chat_template);
}

inline void add_arch_metadata(GgufMetadata& md, const ModelConfig& c) {
  const std::string a = architecture_name(c.arch);
  md.add_string("general.architecture", a);
  md.add_u32(a + ".context_length", static_cast<uint32_t>(c.max_position_embeddings));
  md.add_u32(a + ".embedding_length", c.hidden_size);
  md.add_u32(a + ".block_count", c.num_layers);
  md.add_u32(a + ".feed_forward_length", c.intermediate_size);
  md.add_u32(a + ".attention.head_count", c.num_heads);
  md.add_u32(a + ".attention.head_count_kv", c.num_kv_heads);
  md.add_u32(a + ".attention.key_length", c.head_dim);
  md.add_u32(a + ".attention.value_length", c.head_dim);
  md.add_f32(a + ".rope.freq_base", static_cast<float>(c.rope.theta));
  md.add_f32(a + ".attention.layer_norm_rms_epsilon", c.rms_norm_eps);
}

// Writes `values` as a GGUF file: 2-D tensors as `type` (Q8_0 where a row
// does not fit it), 1-D ones as F32. `dequantized`: 2-D tensors as F32 holding
// the values `type` stores (quantized, then dequantized), the float twin of
// the quantized file. `more_keys` adds metadata after the architecture's.
inline Status write_test_gguf(const fs::path& out, const ModelConfig& c, const FloatModel& values,
                              const fs::path& tokenizer_dir, GgmlType type, bool dequantized = false,
                              const std::function<void(GgufMetadata&)>& more_keys = {}) {
  GgufMetadata md;
  add_arch_metadata(md, c);
  if (more_keys) more_keys(md);
  add_tokenizer_metadata(md, tokenizer_dir, c.arch == Architecture::kLlama ? "llama-bpe" : "qwen2");
  std::vector<GgufTensorDecl> decls;
  std::vector<std::vector<float>> data;
  for (const auto& [name, t] : values) {
    std::vector<float> v = t.values;
    if (c.arch == Architecture::kLlama &&
        (name.find("q_proj") != std::string::npos || name.find("k_proj") != std::string::npos))
      v = permute_for_llama(t, c.head_dim);
    GgmlType ty = GgmlType::kF32;
    if (t.shape.size() == 2) ty = ggml_row_fits(type, t.shape[1]) ? type : GgmlType::kQ8_0;
    if (dequantized && ty != GgmlType::kF32) {
      const auto q = quantize_rows(ty, v.data(), t.shape[0], t.shape[1]);
      dequantize_rows(ty, q.data(), t.shape[0], t.shape[1], v.data());
      ty = GgmlType::kF32;
    }
    std::vector<uint64_t> dims(t.shape.rbegin(), t.shape.rend());
    decls.push_back({test_gguf_name(name), dims, ty});
    data.push_back(std::move(v));
  }
  MB_ASSIGN(auto writer, GgufWriter::create(out, md, decls));
  for (size_t i = 0; i < decls.size(); ++i) MB_TRY(writer->write_tensor(decls[i].name, data[i]));
  return writer->finish();
}

}  // namespace mb::inference::test
