#include "tensors/gguf_names.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

// The name table and the permutation: docs/formats/gguf.md, "Tensor names".
namespace mb {
namespace {

struct NamePair {
  std::string_view hf;
  std::string_view gguf;
};

// Per-layer modules (under model.layers.N. / blk.N.).
constexpr std::array<NamePair, 11> kLayerModules = {{
    {"input_layernorm", "attn_norm"},
    {"self_attn.q_proj", "attn_q"},
    {"self_attn.k_proj", "attn_k"},
    {"self_attn.v_proj", "attn_v"},
    {"self_attn.o_proj", "attn_output"},
    {"self_attn.q_norm", "attn_q_norm"},
    {"self_attn.k_norm", "attn_k_norm"},
    {"post_attention_layernorm", "ffn_norm"},
    {"mlp.gate_proj", "ffn_gate"},
    {"mlp.up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"},
}};

constexpr std::array<NamePair, 3> kGlobalModules = {{
    {"model.embed_tokens", "token_embd"},
    {"model.norm", "output_norm"},
    {"lm_head", "output"},
}};

bool consume(std::string_view& s, std::string_view prefix) {
  if (s.substr(0, prefix.size()) != prefix) return false;
  s.remove_prefix(prefix.size());
  return true;
}

// Which (module, suffix) pairs an architecture has: llama.cpp refuses
// tensors it does not expect, so each list is exactly what its loader takes.
bool allowed(std::string_view arch, std::string_view module, std::string_view suffix) {
  bool qk_norm = module == "attn_q_norm" || module == "attn_k_norm";
  if (qk_norm) return arch == "qwen3" && suffix == "weight";
  if (suffix == "weight") return true;
  bool qkv = module == "attn_q" || module == "attn_k" || module == "attn_v";
  if (arch == "qwen2") return qkv;
  if (arch == "llama") return qkv || module == "attn_output" || module.substr(0, 4) == "ffn_";
  return false;
}

}  // namespace

bool gguf_arch_supported(std::string_view arch) { return arch == "qwen2" || arch == "llama" || arch == "qwen3"; }

std::optional<std::string> gguf_tensor_name(std::string_view arch, std::string_view hf_name) {
  if (!gguf_arch_supported(arch)) return std::nullopt;
  size_t dot = hf_name.rfind('.');
  if (dot == std::string_view::npos) return std::nullopt;
  std::string_view suffix = hf_name.substr(dot + 1);
  std::string_view module = hf_name.substr(0, dot);
  if (suffix != "weight" && suffix != "bias") return std::nullopt;
  for (const NamePair& p : kGlobalModules) {
    if (module == p.hf && (suffix == "weight" || (arch == "qwen2" && p.gguf == "output")))
      return std::string(p.gguf) + "." + std::string(suffix);
  }
  if (!consume(module, "model.layers.")) return std::nullopt;
  size_t layer_end = module.find('.');
  if (layer_end == std::string_view::npos || layer_end == 0) return std::nullopt;
  int layer = 0;
  auto [end, ec] = std::from_chars(module.data(), module.data() + layer_end, layer);
  if (ec != std::errc() || end != module.data() + layer_end || layer < 0) return std::nullopt;
  if (layer_end > 1 && module[0] == '0') return std::nullopt;  // "01" is not a layer index
  module.remove_prefix(layer_end + 1);
  for (const NamePair& p : kLayerModules) {
    if (module == p.hf && allowed(arch, p.gguf, suffix))
      return "blk." + std::to_string(layer) + "." + std::string(p.gguf) + "." + std::string(suffix);
  }
  return std::nullopt;
}

std::optional<std::string> gguf_source_name(std::string_view arch, std::string_view gguf_name) {
  if (!gguf_arch_supported(arch)) return std::nullopt;
  const size_t dot = gguf_name.rfind('.');
  if (dot == std::string_view::npos) return std::nullopt;
  const std::string_view suffix = gguf_name.substr(dot + 1);
  std::string_view module = gguf_name.substr(0, dot);
  std::string hf;
  for (const NamePair& p : kGlobalModules)
    if (module == p.gguf) hf = std::string(p.hf) + "." + std::string(suffix);
  if (hf.empty() && consume(module, "blk.")) {
    const size_t layer_end = module.find('.');
    if (layer_end == std::string_view::npos) return std::nullopt;
    const std::string_view layer = module.substr(0, layer_end);
    for (const NamePair& p : kLayerModules)
      if (module.substr(layer_end + 1) == p.gguf)
        hf = "model.layers." + std::string(layer) + "." + std::string(p.hf) + "." + std::string(suffix);
  }
  // The forward mapping is the one source of truth: a name counts only if
  // it maps back to exactly this GGUF name (so "blk.01." or a bias the
  // architecture lacks is not accepted).
  if (hf.empty() || gguf_tensor_name(arch, hf) != gguf_name) return std::nullopt;
  return hf;
}

std::optional<int> gguf_permuted_heads(std::string_view arch, std::string_view hf_name, int n_head, int n_kv_head) {
  if (arch != "llama") return std::nullopt;
  auto ends = [&](std::string_view tail) {
    return hf_name.size() >= tail.size() && hf_name.substr(hf_name.size() - tail.size()) == tail;
  };
  if (ends("self_attn.q_proj.weight") || ends("self_attn.q_proj.bias")) return n_head;
  if (ends("self_attn.k_proj.weight") || ends("self_attn.k_proj.bias")) return n_kv_head;
  return std::nullopt;
}

int64_t gguf_rope_source_row(int64_t gguf_row, int64_t head_dim) {
  int64_t head = gguf_row / head_dim, k = gguf_row % head_dim, half = head_dim / 2;
  return head * head_dim + (k % 2) * half + k / 2;
}

int64_t gguf_rope_target_row(int64_t hf_row, int64_t head_dim) {
  int64_t head = hf_row / head_dim, k = hf_row % head_dim, half = head_dim / 2;
  return head * head_dim + (k % half) * 2 + k / half;
}

void permute_rows_for_gguf(std::span<const float> hf, int64_t rows, int64_t cols, int n_heads, std::span<float> gguf) {
  const int64_t head_dim = rows / n_heads;
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(&gguf[r * cols], &hf[gguf_rope_source_row(r, head_dim) * cols], cols * sizeof(float));
}

void unpermute_rows_from_gguf(std::span<const float> gguf, int64_t rows, int64_t cols, int n_heads,
                              std::span<float> hf) {
  const int64_t head_dim = rows / n_heads;
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(&hf[r * cols], &gguf[gguf_rope_target_row(r, head_dim) * cols], cols * sizeof(float));
}

}  // namespace mb
