// Type choices worked out by hand from llama.cpp's src/llama-quant.cpp, on
// Qwen2.5-0.5B shapes (24 layers, rows of 896, ffn_down rows of 4864, tied
// embeddings) and a Llama shape (rows of 4096, untied output).
#include "tensors/gguf_type_choice.h"

#include <gtest/gtest.h>

namespace mb {
namespace {

GgmlType qwen(GgufFileType ft, std::string_view name, int layer, int64_t row = 896, int dims = 2) {
  return gguf_tensor_type(ft, {name, row, dims, layer, 24, true});
}

TEST(GgufTypeChoice, Qwen2Q4KM) {
  const auto ft = GgufFileType::kQ4_K_M;
  EXPECT_EQ(qwen(ft, "token_embd.weight", -1), GgmlType::kQ8_0);           // tied output, 896 % 256 != 0
  EXPECT_EQ(qwen(ft, "blk.0.attn_q.weight", 0), GgmlType::kQ5_0);          // Q4_K falls back
  EXPECT_EQ(qwen(ft, "blk.0.attn_v.weight", 0), GgmlType::kQ8_0);          // more bits: Q6_K -> Q8_0
  EXPECT_EQ(qwen(ft, "blk.4.attn_v.weight", 4), GgmlType::kQ5_0);          // not a more-bits layer
  EXPECT_EQ(qwen(ft, "blk.5.ffn_down.weight", 5, 4864), GgmlType::kQ6_K);  // (5 - 3) % 3 == 2
  EXPECT_EQ(qwen(ft, "blk.4.ffn_down.weight", 4, 4864), GgmlType::kQ4_K);
  EXPECT_EQ(qwen(ft, "blk.23.ffn_down.weight", 23, 4864), GgmlType::kQ6_K);  // last eighth
  EXPECT_EQ(qwen(ft, "blk.0.attn_norm.weight", 0, 896, 1), GgmlType::kF32);
  EXPECT_EQ(qwen(ft, "blk.0.attn_q.bias", 0, 896, 1), GgmlType::kF32);
}

TEST(GgufTypeChoice, OtherFileTypes) {
  EXPECT_EQ(qwen(GgufFileType::kQ8_0, "token_embd.weight", -1), GgmlType::kQ8_0);
  EXPECT_EQ(qwen(GgufFileType::kQ6_K, "blk.1.ffn_up.weight", 1), GgmlType::kQ8_0);
  EXPECT_EQ(qwen(GgufFileType::kQ5_K_M, "blk.1.attn_k.weight", 1), GgmlType::kQ5_1);
  EXPECT_EQ(qwen(GgufFileType::kF16, "blk.1.ffn_up.weight", 1), GgmlType::kF16);
  EXPECT_EQ(qwen(GgufFileType::kBF16, "token_embd.weight", -1), GgmlType::kBF16);
  // Llama, untied: output gets Q6_K even in a Q4_0 file; token_embd keeps the default.
  const GgufTensorShape output{"output.weight", 4096, 2, -1, 32, false};
  EXPECT_EQ(gguf_tensor_type(GgufFileType::kQ4_0, output), GgmlType::kQ6_K);
  const GgufTensorShape embd{"token_embd.weight", 4096, 2, -1, 32, false};
  EXPECT_EQ(gguf_tensor_type(GgufFileType::kQ4_K_M, embd), GgmlType::kQ4_K);
  EXPECT_EQ(gguf_file_type_id(*gguf_file_type_from_name("Q4_K_M")), 15u);
  EXPECT_FALSE(gguf_file_type_from_name("q4_k_m").has_value());
}

}  // namespace
}  // namespace mb
