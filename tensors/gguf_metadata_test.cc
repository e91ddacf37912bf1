#include "tensors/gguf_metadata.h"

#include <gtest/gtest.h>

#include <fstream>

#include "base/temp_dir.h"
#include "base/test_paths.h"

namespace mb {
namespace {

using Json = nlohmann::ordered_json;

fs::path tiny_model() { return test::source_dir() / "examples/tiny/models/base-4bit"; }

Json read_json(const fs::path& p) {
  std::ifstream in(p);
  return Json::parse(in);
}

template <typename T>
T get(const GgufMetadata& md, const std::string& key) {
  const GgufValue* v = md.find(key);
  EXPECT_NE(v, nullptr) << key;
  if (v == nullptr || !std::holds_alternative<T>(*v)) {
    ADD_FAILURE() << key << " has another type";
    return T{};
  }
  return std::get<T>(*v);
}

TEST(GgufMetadata, TinyQwen2) {
  std::unique_ptr<FileSystem> fs = make_real_file_system();
  Json config = read_json(tiny_model() / "config.json");
  Result<GgufMetadata> md = build_gguf_metadata(*fs, tiny_model(), config, "tiny", GgufFileType::kQ8_0, true);
  ASSERT_TRUE(md) << md.error().to_string();
  const GgufMetadata& m = md.value();
  EXPECT_EQ(m.entries()[0].key, "general.architecture");
  EXPECT_EQ(get<std::string>(m, "general.architecture"), "qwen2");
  EXPECT_EQ(get<std::string>(m, "general.name"), "tiny");
  EXPECT_EQ(get<uint32_t>(m, "qwen2.block_count"), 4u);
  EXPECT_EQ(get<uint32_t>(m, "qwen2.context_length"), 512u);
  EXPECT_EQ(get<uint32_t>(m, "qwen2.embedding_length"), 128u);
  EXPECT_EQ(get<uint32_t>(m, "qwen2.feed_forward_length"), 384u);
  EXPECT_EQ(get<uint32_t>(m, "qwen2.attention.head_count"), 4u);
  EXPECT_EQ(get<uint32_t>(m, "qwen2.attention.head_count_kv"), 2u);
  EXPECT_EQ(get<float>(m, "qwen2.rope.freq_base"), 1000000.0f);
  EXPECT_EQ(get<float>(m, "qwen2.attention.layer_norm_rms_epsilon"), 1e-6f);
  EXPECT_EQ(m.find("qwen2.attention.key_length"), nullptr);
  EXPECT_EQ(get<uint32_t>(m, "general.file_type"), 7u);
  EXPECT_EQ(get<uint32_t>(m, "general.quantization_version"), 2u);
  EXPECT_EQ(get<uint32_t>(m, "general.alignment"), 32u);
  EXPECT_EQ(get<std::string>(m, "tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(get<std::string>(m, "tokenizer.ggml.pre"), "qwen2");
  auto tokens = get<std::vector<std::string>>(m, "tokenizer.ggml.tokens");
  auto types = get<std::vector<int32_t>>(m, "tokenizer.ggml.token_type");
  ASSERT_EQ(tokens.size(), 1024u);
  ASSERT_EQ(types.size(), 1024u);
  EXPECT_EQ(tokens[1021], "<|im_end|>");
  EXPECT_EQ(types[1021], 3);
  EXPECT_EQ(tokens[1022], "<tool_call>");
  EXPECT_EQ(types[1022], 4);  // added, not special
  EXPECT_EQ(types[0], 1);
  auto merges = get<std::vector<std::string>>(m, "tokenizer.ggml.merges");
  ASSERT_EQ(merges.size(), 763u);
  EXPECT_EQ(merges[0], "\" :");
  EXPECT_EQ(merges[1], "\xc4\xa0 \"");
  EXPECT_EQ(get<uint32_t>(m, "tokenizer.ggml.bos_token_id"), 1019u);  // config.json (tokenizer_config: null)
  EXPECT_EQ(get<uint32_t>(m, "tokenizer.ggml.eos_token_id"), 1021u);
  EXPECT_EQ(get<uint32_t>(m, "tokenizer.ggml.padding_token_id"), 1019u);
  EXPECT_EQ(get<bool>(m, "tokenizer.ggml.add_bos_token"), false);
  EXPECT_NE(get<std::string>(m, "tokenizer.chat_template").find("<|im_start|>"), std::string::npos);
}

// A copy of the tiny model's small files with one of them changed.
class GgufMetadataBadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json"})
      fs::copy_file(tiny_model() / f, m_dir.path() / f);
  }
  Error build(const Json& config) {
    std::unique_ptr<FileSystem> fs = make_real_file_system();
    Result<GgufMetadata> md = build_gguf_metadata(*fs, m_dir.path(), config, "x", GgufFileType::kF16, false);
    EXPECT_FALSE(md);
    return md ? Error{} : md.error();
  }
  Json config() { return read_json(m_dir.path() / "config.json"); }
  void write(const char* name, const std::string& text) { std::ofstream(m_dir.path() / name) << text; }
  TempDir m_dir;
};

TEST_F(GgufMetadataBadInput, MissingTokenizerFiles) {
  fs::remove(m_dir.path() / "tokenizer.json");
  Error e = build(config());
  EXPECT_EQ(e.code, Errc::kInvalidInput);
  EXPECT_NE(e.where.find("tokenizer.json"), std::string::npos) << e.to_string();
  fs::copy_file(tiny_model() / "tokenizer.json", m_dir.path() / "tokenizer.json");
  fs::remove(m_dir.path() / "tokenizer_config.json");
  e = build(config());
  EXPECT_NE(e.where.find("tokenizer_config.json"), std::string::npos) << e.to_string();
}

TEST_F(GgufMetadataBadInput, MalformedTokenizerFiles) {
  write("tokenizer.json", "{\"model\": ");
  Error e = build(config());
  EXPECT_EQ(e.code, Errc::kInvalidInput);
  EXPECT_NE(e.where.find("tokenizer.json"), std::string::npos) << e.to_string();
  fs::remove(m_dir.path() / "tokenizer.json");
  fs::copy_file(tiny_model() / "tokenizer.json", m_dir.path() / "tokenizer.json");
  write("tokenizer_config.json", "{\"add_bos_token\": 3}");
  e = build(config());
  EXPECT_NE(e.to_string().find("tokenizer_config.json: add_bos_token"), std::string::npos) << e.to_string();
}

TEST_F(GgufMetadataBadInput, UnsupportedArchitectureIsNamed) {
  Json c = config();
  c["architectures"] = {"GemmaForCausalLM"};
  Error e = build(c);
  EXPECT_EQ(e.code, Errc::kUnsupported);
  EXPECT_NE(e.to_string().find("GemmaForCausalLM"), std::string::npos) << e.to_string();
}

TEST_F(GgufMetadataBadInput, VocabSmallerThanTokenizer) {
  Json c = config();
  c["vocab_size"] = 1000;
  Error e = build(c);
  EXPECT_NE(e.to_string().find("vocab_size 1000"), std::string::npos) << e.to_string();
}

TEST(GgufMetadata, LlamaKeysAndRopeFreqs) {
  Json c = read_json(tiny_model() / "config.json");
  c["architectures"] = {"LlamaForCausalLM"};
  c["model_type"] = "llama";
  c["head_dim"] = 32;
  c["rope_scaling"] = {{"rope_type", "llama3"},
                       {"factor", 32.0},
                       {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192}};
  c["rope_theta"] = 500000.0;
  c.erase("quantization");
  c.erase("quantization_config");
  Result<GgufModelFacts> f = gguf_model_facts(c, "config.json");
  ASSERT_TRUE(f) << f.error().to_string();
  GgufMetadata m;
  add_gguf_arch_metadata(m, f.value(), "l", GgufFileType::kF16, false);
  EXPECT_EQ(get<uint32_t>(m, "llama.vocab_size"), 1024u);
  EXPECT_EQ(get<uint32_t>(m, "llama.rope.dimension_count"), 32u);
  EXPECT_EQ(get<uint32_t>(m, "llama.attention.key_length"), 32u);
  EXPECT_EQ(m.find("general.quantization_version"), nullptr);
  std::vector<float> freqs = gguf_rope_freqs(f.value());
  ASSERT_EQ(freqs.size(), 16u);
  EXPECT_EQ(freqs[0], 1.0f);    // short wavelengths are kept
  EXPECT_EQ(freqs[15], 32.0f);  // long ones divided by the factor
  for (float v : freqs) EXPECT_TRUE(v >= 1.0f && v <= 32.0f);
  EXPECT_TRUE(gguf_rope_freqs(gguf_model_facts(read_json(tiny_model() / "config.json"), "c").value()).empty());
}

// Linear rope scaling is two keys; a config without scaling writes neither.
TEST(GgufMetadata, LinearRopeScalingKeys) {
  Json c = read_json(tiny_model() / "config.json");
  c["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};
  Result<GgufModelFacts> f = gguf_model_facts(c, "config.json");
  ASSERT_TRUE(f) << f.error().to_string();
  GgufMetadata m;
  add_gguf_arch_metadata(m, f.value(), "q", GgufFileType::kF16, false);
  EXPECT_EQ(get<std::string>(m, "qwen2.rope.scaling.type"), "linear");
  EXPECT_EQ(get<float>(m, "qwen2.rope.scaling.factor"), 4.0f);
  EXPECT_TRUE(gguf_rope_freqs(f.value()).empty());
  GgufMetadata plain;
  add_gguf_arch_metadata(plain, gguf_model_facts(read_json(tiny_model() / "config.json"), "c").value(), "q",
                         GgufFileType::kF16, false);
  EXPECT_EQ(plain.find("qwen2.rope.scaling.type"), nullptr);
  EXPECT_EQ(plain.find("qwen2.rope.scaling.factor"), nullptr);
}

TEST(GgufMetadata, AddedTokenTypes) {
  EXPECT_EQ(gguf_added_token_type("<|eot_id|>", false), 3);
  EXPECT_EQ(gguf_added_token_type("<tool_call>", false), 4);
  EXPECT_EQ(gguf_added_token_type("<tool_call>", true), 3);
  EXPECT_EQ(gguf_added_token_type("<unused12>", false), 3);
}

}  // namespace
}  // namespace mb
