#include "inference/generator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "inference/golden_test_support.h"

namespace mb::inference {
namespace {

// Token id t -> one letter, so text checks are easy.
std::string letters(std::span<const int32_t> ids) {
  std::string s;
  for (int32_t t : ids) s += static_cast<char>('a' + t % 26);
  return s;
}

class GeneratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = load_test_model(golden_root() / "models" / "qwen2-f32", {});
    ASSERT_TRUE(m.ok()) << m.error().to_string();
    m_model = std::make_unique<Model>(std::move(*m));
    std::ifstream f(golden_root() / "golden.json");
    m_prompt = nlohmann::json::parse(f)["prompt"].get<std::vector<int32_t>>();
  }
  std::unique_ptr<Model> m_model;
  std::vector<int32_t> m_prompt;
  ThreadPool m_pool{2};
};

TEST_F(GeneratorTest, GreedyTokensAreTheArgmaxChain) {
  Forward fw(*m_model, m_pool);
  Generator gen(fw, {}, letters);
  GenerateOptions o;
  o.max_tokens = 6;
  auto g = gen.generate(m_prompt, o);
  ASSERT_TRUE(g.ok()) << g.error().to_string();
  EXPECT_EQ(g->stop_reason, "max_tokens");
  ASSERT_EQ(g->tokens.size(), 6u);
  EXPECT_EQ(g->text, letters(g->tokens));
  EXPECT_EQ(g->prompt_tokens, static_cast<int>(m_prompt.size()));
  EXPECT_EQ(g->completion_tokens, 6);
  // The same chain, one full recompute per step.
  std::vector<int32_t> seq = m_prompt;
  for (int i = 0; i < 6; ++i) {
    auto lg = gen.logits(seq, false);
    ASSERT_TRUE(lg.ok());
    seq.push_back(argmax(*lg));
    EXPECT_EQ(seq.back(), g->tokens[i]) << "step " << i;
  }
}

TEST_F(GeneratorTest, CachedPrefixGivesIdenticalResults) {
  Forward fw1(*m_model, m_pool), fw2(*m_model, m_pool);
  Generator warm(fw1, {}, letters), cold(fw2, {}, letters);
  GenerateOptions o;
  o.max_tokens = 5;
  // Warm the cache with a prompt sharing all but the last token, and with the
  // same prompt itself (the whole prompt cached).
  std::vector<int32_t> other = m_prompt;
  other.back() = (other.back() + 1) % 200;
  ASSERT_TRUE(warm.generate(other, o).ok());
  auto a = warm.generate(m_prompt, o);
  auto b = warm.generate(m_prompt, o);
  auto c = cold.generate(m_prompt, o);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->tokens, c->tokens);
  EXPECT_EQ(b->tokens, c->tokens);
}

TEST_F(GeneratorTest, StopsAtStopTokenWithoutEmittingIt) {
  Forward fw(*m_model, m_pool);
  Generator probe(fw, {}, letters);
  GenerateOptions o;
  o.max_tokens = 8;
  // Find a prompt whose greedy continuation has a token (after the first)
  // not seen before, and make that token a stop token.
  for (int shift = 0; shift < 20; ++shift) {
    std::vector<int32_t> prompt = m_prompt;
    for (auto& t : prompt) t = (t + 17 * shift) % 256;
    auto g = probe.generate(prompt, o);
    ASSERT_TRUE(g.ok());
    size_t k = 1;
    while (k < g->tokens.size() &&
           std::find(g->tokens.begin(), g->tokens.begin() + k, g->tokens[k]) != g->tokens.begin() + k)
      ++k;
    if (k == g->tokens.size()) continue;
    Generator gen(fw, {g->tokens[k]}, letters);
    auto s = gen.generate(prompt, o);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->stop_reason, "eos");
    EXPECT_EQ(s->tokens, std::vector<int32_t>(g->tokens.begin(), g->tokens.begin() + k));
    EXPECT_EQ(s->text, letters(s->tokens));
    return;
  }
  FAIL() << "no prompt with a varied greedy continuation";
}

TEST_F(GeneratorTest, StopStringsAndStreaming) {
  Forward fw(*m_model, m_pool);
  Generator gen(fw, {}, letters);
  GenerateOptions o;
  o.max_tokens = 8;
  auto full = gen.generate(m_prompt, o);
  ASSERT_TRUE(full.ok());
  std::string streamed;
  o.on_text = [&](std::string_view s) { streamed += s; };
  o.stop_strings = {full->text.substr(3, 2)};
  auto g = gen.generate(m_prompt, o);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->stop_reason, "stop_string");
  EXPECT_EQ(g->text, full->text.substr(0, full->text.find(o.stop_strings[0])));
  EXPECT_EQ(streamed, g->text);
}

TEST_F(GeneratorTest, PromptLongerThanContextIsAnError) {
  Forward fw(*m_model, m_pool);
  fw.set_context_limit(static_cast<int64_t>(m_prompt.size()));
  Generator gen(fw, {}, letters);
  auto g = gen.generate(m_prompt, GenerateOptions{});
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().code, Errc::kInvalidInput);
  EXPECT_NE(g.error().message.find("does not fit the context"), std::string::npos) << g.error().message;
}

TEST_F(GeneratorTest, GenerationStopsWhenTheContextIsFull) {
  Forward fw(*m_model, m_pool);
  fw.set_context_limit(static_cast<int64_t>(m_prompt.size()) + 3);
  Generator gen(fw, {}, letters);
  GenerateOptions o;
  o.max_tokens = 50;
  auto g = gen.generate(m_prompt, o);
  ASSERT_TRUE(g.ok()) << g.error().to_string();
  EXPECT_EQ(g->tokens.size(), 4u);  // 3 fed back into the cache, plus the last one
  EXPECT_EQ(g->stop_reason, "max_tokens");
}

TEST_F(GeneratorTest, BadTokenIdsAreErrors) {
  Forward fw(*m_model, m_pool);
  Generator gen(fw, {}, letters);
  std::vector<int32_t> bad = {1, 2, 100000};
  auto g = gen.logits(bad, false);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.error().message.find("outside the vocabulary"), std::string::npos);
  // The session is still usable.
  EXPECT_TRUE(gen.logits(m_prompt, false).ok());
}

TEST_F(GeneratorTest, LogitsFilterForcesTokensAndOnTokenCancels) {
  Forward fw(*m_model, m_pool);
  Generator gen(fw, {}, letters);
  GenerateOptions o;
  o.max_tokens = 6;
  auto free_run = gen.generate(m_prompt, o);
  ASSERT_TRUE(free_run.ok());
  // Force the first two tokens to ids the free run did not start with; the
  // filter sees the tokens chosen so far.
  const std::vector<int32_t> forced = {(free_run->tokens[0] + 1) % 200, (free_run->tokens[1] + 7) % 200};
  std::vector<size_t> seen;
  o.logits_filter = [&](std::span<const int32_t> generated, std::span<float> logits) {
    seen.push_back(generated.size());
    if (generated.size() >= forced.size()) return;
    for (size_t i = 0; i < logits.size(); ++i)
      if (static_cast<int32_t>(i) != forced[generated.size()]) logits[i] = -std::numeric_limits<float>::infinity();
  };
  auto g = gen.generate(m_prompt, o);
  ASSERT_TRUE(g.ok());
  ASSERT_EQ(g->tokens.size(), 6u);
  EXPECT_EQ(g->tokens[0], forced[0]);
  EXPECT_EQ(g->tokens[1], forced[1]);
  EXPECT_EQ(seen, (std::vector<size_t>{0, 1, 2, 3, 4, 5}));
  // The rest is the greedy chain after the forced prefix.
  std::vector<int32_t> seq = m_prompt;
  seq.insert(seq.end(), g->tokens.begin(), g->tokens.begin() + 2);
  auto lg = gen.logits(seq, false);
  ASSERT_TRUE(lg.ok());
  EXPECT_EQ(g->tokens[2], argmax(*lg));

  GenerateOptions c;
  c.max_tokens = 6;
  int calls = 0;
  c.on_token = [&](int32_t) { return ++calls < 3; };
  auto cancelled = gen.generate(m_prompt, c);
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->stop_reason, "cancelled");
  EXPECT_EQ(cancelled->tokens, std::vector<int32_t>(free_run->tokens.begin(), free_run->tokens.begin() + 3));
}

TEST_F(GeneratorTest, SampledGenerationIsDeterministicUnderASeed) {
  Forward fw(*m_model, m_pool);
  Generator gen(fw, {}, letters);
  GenerateOptions o;
  o.max_tokens = 12;
  o.sampling.temperature = 1.5;
  o.sampling.seed = 11;
  auto a = gen.generate(m_prompt, o);
  auto b = gen.generate(m_prompt, o);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->tokens, b->tokens);
  bool differs = false;
  for (uint64_t seed = 12; seed < 20 && !differs; ++seed) {
    o.sampling.seed = seed;
    auto c = gen.generate(m_prompt, o);
    ASSERT_TRUE(c.ok());
    differs = c->tokens != a->tokens;
  }
  EXPECT_TRUE(differs) << "eight other seeds all gave the same tokens";
}

}  // namespace
}  // namespace mb::inference
