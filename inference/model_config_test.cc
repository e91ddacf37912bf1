#include "inference/model_config.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

namespace mb::inference {
namespace {

using nlohmann::json;

// Qwen2.5-0.5B-Instruct's config.json (docs/formats/qwen2-forward.md §1).
json qwen25() {
  return json::parse(R"({
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 896,
    "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
    "num_key_value_heads": 2, "hidden_act": "silu", "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "rope_scaling": null, "tie_word_embeddings": true,
    "vocab_size": 151936, "use_sliding_window": false, "sliding_window": 32768, "max_window_layers": 24,
    "torch_dtype": "bfloat16", "bos_token_id": 151643, "eos_token_id": 151645})");
}

Result<ModelConfig> parse(const json& j) { return parse_model_config(j.dump(), "m/config.json"); }

TEST(ModelConfig, ParsesQwen25) {
  auto c = parse(qwen25());
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->arch, Architecture::kQwen2);
  EXPECT_EQ(c->hidden_size, 896);
  EXPECT_EQ(c->head_dim, 64);
  EXPECT_EQ(c->num_kv_heads, 2);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_TRUE(c->qkv_bias);
  EXPECT_FALSE(c->o_bias);
  EXPECT_FALSE(c->qk_norm);
  EXPECT_EQ(c->rope.theta, 1e6);
  EXPECT_EQ(c->rope.type, RopeConfig::Type::kDefault);
  EXPECT_EQ(c->eos_token_ids, std::vector<int32_t>{151645});
}

TEST(ModelConfig, UnsupportedArchitectureNamesFileAndValue) {
  json j = qwen25();
  j["architectures"] = {"MambaForCausalLM"};
  auto c = parse(j);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, Errc::kUnsupported);
  EXPECT_EQ(c.error().where, "m/config.json");
  EXPECT_NE(c.error().message.find("MambaForCausalLM"), std::string::npos) << c.error().message;
}

TEST(ModelConfig, ModelTypeAloneIsEnough) {
  json j = qwen25();
  j.erase("architectures");
  j["model_type"] = "llama";
  j["attention_bias"] = true;
  auto c = parse(j);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->arch, Architecture::kLlama);
  EXPECT_TRUE(c->qkv_bias && c->o_bias);
  j["model_type"] = "gpt2";
  auto bad = parse(j);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("gpt2"), std::string::npos);
}

TEST(ModelConfig, BadFieldsAreNamed) {
  for (const char* field : {"hidden_size", "num_hidden_layers", "vocab_size"}) {
    json j = qwen25();
    j.erase(field);
    auto c = parse(j);
    ASSERT_FALSE(c.ok()) << field;
    EXPECT_NE(c.error().message.find(field), std::string::npos) << c.error().message;
  }
  json j = qwen25();
  j["num_key_value_heads"] = 3;
  EXPECT_FALSE(parse(j).ok());
  j = qwen25();
  j["hidden_size"] = "896";
  EXPECT_FALSE(parse(j).ok());
  j = qwen25();
  j["use_sliding_window"] = true;
  EXPECT_EQ(parse(j).error().code, Errc::kUnsupported);
  j = qwen25();
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  auto y = parse(j);
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.error().message.find("yarn"), std::string::npos);
  EXPECT_EQ(parse_model_config("{not json", "m/config.json").error().code, Errc::kCorrupt);
}

TEST(ModelConfig, Qwen3HasExplicitHeadDimAndQkNorm) {
  json j = qwen25();
  j["architectures"] = {"Qwen3ForCausalLM"};
  j["head_dim"] = 128;
  auto c = parse(j);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_TRUE(c->qk_norm);
  EXPECT_FALSE(c->qkv_bias);
}

TEST(ModelConfig, RopeParametersNestedAsInNewerTransformers) {
  json j = qwen25();
  j.erase("rope_theta");
  j["rope_parameters"] = {{"rope_theta", 500000.0}, {"rope_type", "default"}};
  auto c = parse(j);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->rope.theta, 500000.0);
}

TEST(ModelConfig, Llama3RopeScaling) {
  json j = qwen25();
  j["architectures"] = {"LlamaForCausalLM"};
  j["rope_theta"] = 500000.0;
  j["rope_scaling"] = {{"rope_type", "llama3"},
                       {"factor", 8.0},
                       {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192}};
  auto c = parse(j);
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  ASSERT_EQ(c->rope.type, RopeConfig::Type::kLlama3);
  auto f = rope_inv_freq(c->rope, 64);
  auto base = rope_inv_freq(RopeConfig{RopeConfig::Type::kDefault, 500000.0}, 64);
  ASSERT_EQ(f.size(), 32u);
  // docs/formats/qwen2-forward.md §5: wavelengths below 8192/4 keep their frequency,
  // above 8192/1 are divided by the factor, in between are blended.
  int kept = 0, divided = 0, blended = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    const double wavelen = 2 * M_PI / base[i];
    if (wavelen < 2048) {
      EXPECT_EQ(f[i], base[i]);
      ++kept;
    } else if (wavelen > 8192) {
      EXPECT_DOUBLE_EQ(f[i], base[i] / 8);
      ++divided;
    } else {
      const double s = (8192 / wavelen - 1) / 3;
      EXPECT_DOUBLE_EQ(f[i], (1 - s) * base[i] / 8 + s * base[i]);
      ++blended;
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(divided, 0);
  EXPECT_GT(blended, 0);
  EXPECT_DOUBLE_EQ(base[1], std::pow(500000.0, -2.0 / 64));
}

}  // namespace
}  // namespace mb::inference
