#include "tensors/gguf_names.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mb {
namespace {

TEST(GgufNames, MapsQwen2) {
  EXPECT_EQ(gguf_tensor_name("qwen2", "model.embed_tokens.weight"), "token_embd.weight");
  EXPECT_EQ(gguf_tensor_name("qwen2", "model.norm.weight"), "output_norm.weight");
  EXPECT_EQ(gguf_tensor_name("qwen2", "lm_head.weight"), "output.weight");
  EXPECT_EQ(gguf_tensor_name("qwen2", "model.layers.0.input_layernorm.weight"), "blk.0.attn_norm.weight");
  EXPECT_EQ(gguf_tensor_name("qwen2", "model.layers.12.self_attn.q_proj.weight"), "blk.12.attn_q.weight");
  EXPECT_EQ(gguf_tensor_name("qwen2", "model.layers.12.self_attn.k_proj.bias"), "blk.12.attn_k.bias");
  EXPECT_EQ(gguf_tensor_name("qwen2", "model.layers.1.self_attn.v_proj.bias"), "blk.1.attn_v.bias");
  EXPECT_EQ(gguf_tensor_name("qwen2", "model.layers.1.self_attn.o_proj.weight"), "blk.1.attn_output.weight");
  EXPECT_EQ(gguf_tensor_name("qwen2", "model.layers.1.post_attention_layernorm.weight"), "blk.1.ffn_norm.weight");
  EXPECT_EQ(gguf_tensor_name("qwen2", "model.layers.1.mlp.gate_proj.weight"), "blk.1.ffn_gate.weight");
  EXPECT_EQ(gguf_tensor_name("qwen2", "model.layers.1.mlp.up_proj.weight"), "blk.1.ffn_up.weight");
  EXPECT_EQ(gguf_tensor_name("qwen2", "model.layers.1.mlp.down_proj.weight"), "blk.1.ffn_down.weight");
  EXPECT_EQ(gguf_tensor_name("qwen2", "model.layers.1.self_attn.q_norm.weight"), std::nullopt);
  EXPECT_EQ(gguf_tensor_name("qwen2", "model.layers.1.self_attn.o_proj.bias"), std::nullopt);
}

TEST(GgufNames, MapsQwen3AndLlama) {
  EXPECT_EQ(gguf_tensor_name("qwen3", "model.layers.2.self_attn.q_norm.weight"), "blk.2.attn_q_norm.weight");
  EXPECT_EQ(gguf_tensor_name("qwen3", "model.layers.2.self_attn.k_norm.weight"), "blk.2.attn_k_norm.weight");
  EXPECT_EQ(gguf_tensor_name("qwen3", "model.layers.2.self_attn.q_proj.bias"), std::nullopt);
  EXPECT_EQ(gguf_tensor_name("llama", "model.layers.2.self_attn.o_proj.bias"), "blk.2.attn_output.bias");
  EXPECT_EQ(gguf_tensor_name("llama", "model.layers.2.mlp.up_proj.bias"), "blk.2.ffn_up.bias");
  EXPECT_EQ(gguf_tensor_name("llama", "model.layers.2.self_attn.q_norm.weight"), std::nullopt);
}

TEST(GgufNames, RejectsUnknownNamesAndArchitectures) {
  EXPECT_EQ(gguf_tensor_name("gemma", "model.norm.weight"), std::nullopt);
  EXPECT_FALSE(gguf_arch_supported("mistral"));
  for (const char* bad :
       {"model.layers.x.mlp.up_proj.weight", "model.layers.01.mlp.up_proj.weight", "model.layers..mlp.up_proj.weight",
        "model.layers.1.mlp.up_proj.scales", "model.layers.1.mlp.up_proj", "lm_head",
        "model.layers.-1.mlp.up_proj.weight", "model.layers.1.mlp.experts.weight"})
    EXPECT_EQ(gguf_tensor_name("qwen2", bad), std::nullopt) << bad;
}

// gguf_source_name undoes gguf_tensor_name for every name an export writes,
// and refuses what no export writes.
TEST(GgufNames, SourceNameInvertsTheMapping) {
  const std::vector<std::string> modules = {
      "input_layernorm",  "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
      "self_attn.o_proj", "self_attn.q_norm", "self_attn.k_norm", "post_attention_layernorm",
      "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
  int mapped = 0;
  for (const char* arch : {"qwen2", "llama", "qwen3"}) {
    std::vector<std::string> names = {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
                                      "lm_head.bias"};
    for (const std::string& m : modules)
      for (const char* suffix : {".weight", ".bias"}) names.push_back("model.layers.17." + m + suffix);
    for (const std::string& hf : names) {
      const auto g = gguf_tensor_name(arch, hf);
      if (!g) continue;
      ++mapped;
      EXPECT_EQ(gguf_source_name(arch, *g), hf) << arch << " " << *g;
    }
  }
  EXPECT_GT(mapped, 40);
  EXPECT_EQ(gguf_source_name("qwen2", "blk.0.attn_q.weight"), "model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(gguf_source_name("qwen2", "output.bias"), "lm_head.bias");
  for (const char* bad : {"rope_freqs.weight", "blk.01.attn_q.weight", "blk.0.attn_output.bias", "blk.x.attn_q.weight",
                          "blk.0.attn_q_norm.weight", "blk..attn_q.weight", "output", "token_embd.bias"})
    EXPECT_EQ(gguf_source_name("qwen2", bad), std::nullopt) << bad;
  EXPECT_EQ(gguf_source_name("gemma", "output.weight"), std::nullopt);
}

TEST(GgufNames, PermutedHeadsOnlyForLlamaQk) {
  EXPECT_EQ(gguf_permuted_heads("llama", "model.layers.0.self_attn.q_proj.weight", 32, 8), 32);
  EXPECT_EQ(gguf_permuted_heads("llama", "model.layers.0.self_attn.k_proj.weight", 32, 8), 8);
  EXPECT_EQ(gguf_permuted_heads("llama", "model.layers.0.self_attn.k_proj.bias", 32, 8), 8);
  EXPECT_EQ(gguf_permuted_heads("llama", "model.layers.0.self_attn.v_proj.weight", 32, 8), std::nullopt);
  EXPECT_EQ(gguf_permuted_heads("qwen2", "model.layers.0.self_attn.q_proj.weight", 32, 8), std::nullopt);
  EXPECT_EQ(gguf_permuted_heads("qwen3", "model.layers.0.self_attn.k_proj.weight", 32, 8), std::nullopt);
}

// llama.cpp's permute is reshape(n_head, 2, D/2, cols).swapaxes(1, 2): GGUF
// row (h, i, j) with i < D/2, j < 2 holds HF row (h, j, i).
TEST(GgufNames, PermutationMatchesReshapeSwapaxes) {
  const int64_t n_head = 3, d = 8, rows = n_head * d, cols = 2;
  std::vector<float> hf(rows * cols), gguf(rows * cols), back(rows * cols);
  for (size_t i = 0; i < hf.size(); ++i) hf[i] = static_cast<float>(i);
  permute_rows_for_gguf(hf, rows, cols, n_head, gguf);
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t i = 0; i < d / 2; ++i)
      for (int64_t j = 0; j < 2; ++j)
        for (int64_t c = 0; c < cols; ++c)
          EXPECT_EQ(gguf[((h * d) + i * 2 + j) * cols + c], hf[((h * d) + j * (d / 2) + i) * cols + c]);
  std::vector<int64_t> head0;
  for (int64_t r = 0; r < d; ++r) head0.push_back(gguf_rope_source_row(r, d));
  EXPECT_EQ(head0, (std::vector<int64_t>{0, 4, 1, 5, 2, 6, 3, 7}));
  unpermute_rows_from_gguf(gguf, rows, cols, n_head, back);
  EXPECT_EQ(back, hf);
  for (int64_t r = 0; r < rows; ++r) EXPECT_EQ(gguf_rope_target_row(gguf_rope_source_row(r, d), d), r);
}

}  // namespace
}  // namespace mb
