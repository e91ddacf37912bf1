#include "inference/engine.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/fs_test_support.h"
#include "inference/golden_test_support.h"

namespace mb::inference {
namespace {

using nlohmann::json;

std::string read(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A golden model (and the golden adapters) copied into a MemoryFileSystem
// under /m and /adapters, so tests can break files without touching disk.
class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path root = golden_root();
    copy_dir(root / "models" / "qwen2-f32", "/m");
    for (const char* a : {"qwen2-lora-mlx", "qwen2-lora-peft", "other-model-lora-mlx"})
      copy_dir(root / "adapters" / a, fs::path("/adapters") / a);
    m_golden = json::parse(read(root / "golden.json"));
  }
  void copy_dir(const fs::path& from, const fs::path& to) {
    for (const auto& e : fs::directory_iterator(from)) m_fs.add_file(to / e.path().filename(), read(e.path()));
  }
  json file_json(const fs::path& p) { return json::parse(*m_fs.contents(p)); }
  void put_json(const fs::path& p, const json& j) { m_fs.add_file(p, j.dump()); }
  Result<std::unique_ptr<Engine>> load(LoadOptions o = {}) {
    if (o.threads == 0) o.threads = 2;
    return Engine::load(m_fs, "/m", o);
  }

  MemoryFileSystem m_fs;
  json m_golden;
};

TEST_F(EngineTest, SummaryDescribesTheModel) {
  auto e = load();
  ASSERT_TRUE(e.ok()) << e.error().to_string();
  const ModelSummary& s = (*e)->summary();
  EXPECT_EQ(s.architecture, "qwen2");
  EXPECT_EQ(s.layers, 2);
  EXPECT_EQ(s.hidden, 32);
  EXPECT_EQ(s.vocab, 272);
  EXPECT_EQ(s.weight_format, "f32");
  // embed 272x32 + 2 x (q 32x32 + k,v 16x32 + o 32x32 + 3 x 64x32 + biases 64 + norms 64) + final norm 32
  EXPECT_EQ(s.parameters, 272 * 32 + 2 * (1024 + 2 * 512 + 1024 + 3 * 2048 + 64 + 64) + 32);
  EXPECT_GT(s.weight_bytes, 4u * static_cast<uint64_t>(s.parameters) - 1);
  EXPECT_GE((*e)->load_seconds(), 0);
}

TEST_F(EngineTest, LogitsMatchTheGoldenReference) {
  auto e = load();
  ASSERT_TRUE(e.ok()) << e.error().to_string();
  std::vector<int32_t> toks = m_golden["prompt"].get<std::vector<int32_t>>();
  for (int32_t t : m_golden["continuation"]) toks.push_back(t);
  const json& c = m_golden["cases"][0];
  ASSERT_EQ(c["name"], "qwen2-f32");
  const std::string bytes = read(golden_root() / c["logits"].get<std::string>());
  std::vector<float> want(bytes.size() / 4);
  std::memcpy(want.data(), bytes.data(), bytes.size());
  auto all = (*e)->all_logits(toks);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), want.size());
  const double tol = 2e-5 * c["max_abs_logit"].get<double>();  // as in golden_test.cc
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR((*all)[i], want[i], tol) << i;
  auto last = (*e)->logits(toks);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(*last, std::vector<float>(all->end() - 272, all->end()));
}

TEST_F(EngineTest, TokenizeRoundTripsAndChatUsesTheDefaultSystem) {
  auto e = load();
  ASSERT_TRUE(e.ok()) << e.error().to_string();
  auto ids = (*e)->tokenize("Hello there<|im_end|>");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->back(), 271);  // <|im_end|> is one token
  EXPECT_EQ((*e)->detokenize(*ids), "Hello there<|im_end|>");
  auto prompt = (*e)->render_chat({{"user", "Hi"}}, nullptr);
  ASSERT_TRUE(prompt.ok()) << prompt.error().to_string();
  EXPECT_EQ(*prompt,
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST_F(EngineTest, GenerateIsGreedyAndStreamsItsText) {
  LoadOptions o;
  o.adapters = {"/adapters/qwen2-lora-mlx"};
  auto e = load(o);
  ASSERT_TRUE(e.ok()) << e.error().to_string();
  GenerateOptions g;
  g.max_tokens = 6;
  std::string streamed;
  g.on_text = [&](std::string_view s) { streamed += s; };
  auto out = (*e)->generate({{"user", "Say something"}}, nullptr, g);
  ASSERT_TRUE(out.ok()) << out.error().to_string();
  EXPECT_EQ(streamed, out->text);
  EXPECT_LE(out->completion_tokens, 6);
  EXPECT_EQ(out->completion_tokens, static_cast<int>(out->tokens.size()));
  EXPECT_GT(out->prompt_tokens, 20);
  EXPECT_GT(out->prefill_seconds, 0);
  EXPECT_GE(out->time_to_first_token_seconds, out->prefill_seconds);
  // The same tokens by recomputing argmax over full prefixes.
  auto prompt = (*e)->render_chat({{"user", "Say something"}}, nullptr);
  auto seq = (*e)->tokenize(*prompt);
  ASSERT_TRUE(seq.ok());
  for (int32_t want : out->tokens) {
    auto lg = (*e)->logits(*seq);
    ASSERT_TRUE(lg.ok());
    const int32_t best = static_cast<int32_t>(std::max_element(lg->begin(), lg->end()) - lg->begin());
    EXPECT_EQ(best, want);
    seq->push_back(best);
  }
}

TEST_F(EngineTest, EosFromGenerationConfigStopsGeneration) {
  auto e = load();
  ASSERT_TRUE(e.ok());
  GenerateOptions g;
  g.max_tokens = 4;
  auto first = (*e)->generate_from_text("abc", g);
  ASSERT_TRUE(first.ok());
  ASSERT_FALSE(first->tokens.empty());
  // Declare the first greedy token an end-of-generation id.
  json gc = file_json("/m/generation_config.json");
  gc["eos_token_id"] = {271, 269, first->tokens[0]};
  put_json("/m/generation_config.json", gc);
  auto e2 = load();
  ASSERT_TRUE(e2.ok());
  auto out = (*e2)->generate_from_text("abc", g);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->stop_reason, "eos");
  EXPECT_TRUE(out->tokens.empty());
  EXPECT_EQ(out->text, "");
}

TEST_F(EngineTest, PromptLongerThanTheContextIsAClearError) {
  json c = file_json("/m/config.json");
  c["max_position_embeddings"] = 8;
  put_json("/m/config.json", c);
  auto e = load();
  ASSERT_TRUE(e.ok());
  auto out = (*e)->generate_from_text("this prompt is longer than eight tokens", GenerateOptions{});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, Errc::kInvalidInput);
  EXPECT_NE(out.error().message.find("does not fit the context of 8 tokens"), std::string::npos) << out.error().message;
}

TEST_F(EngineTest, UnsupportedArchitectureNamesConfigJson) {
  json c = file_json("/m/config.json");
  c["architectures"] = {"GPTNeoXForCausalLM"};
  put_json("/m/config.json", c);
  auto e = load();
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, Errc::kUnsupported);
  EXPECT_NE(e.error().to_string().find("config.json"), std::string::npos);
  EXPECT_NE(e.error().to_string().find("GPTNeoXForCausalLM"), std::string::npos);
}

TEST_F(EngineTest, MissingOrMalformedTokenizerIsAClearError) {
  ASSERT_TRUE(m_fs.remove("/m/tokenizer.json").ok());
  auto missing = load();
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::kNotFound);
  EXPECT_NE(missing.error().to_string().find("tokenizer.json"), std::string::npos) << missing.error().to_string();

  m_fs.add_file("/m/tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": [1, 2");
  auto malformed = load();
  ASSERT_FALSE(malformed.ok());
  EXPECT_NE(malformed.error().to_string().find("tokenizer.json"), std::string::npos) << malformed.error().to_string();
}

TEST_F(EngineTest, AdapterForAnotherModelIsAClearError) {
  LoadOptions o;
  o.adapters = {"/adapters/other-model-lora-mlx"};
  auto e = load(o);
  ASSERT_FALSE(e.ok());
  const std::string msg = e.error().to_string();
  EXPECT_NE(msg.find("/adapters/other-model-lora-mlx"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.layers.0."), std::string::npos) << msg;
}

TEST_F(EngineTest, MissingWeightNamesTheTensor) {
  // Rewrite config to claim an untied lm_head that the file does not have.
  json c = file_json("/m/config.json");
  c["tie_word_embeddings"] = false;
  put_json("/m/config.json", c);
  auto e = load();
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().to_string().find("lm_head.weight"), std::string::npos) << e.error().to_string();
}

}  // namespace
}  // namespace mb::inference
