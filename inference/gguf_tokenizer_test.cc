// The tokenizer rebuilt from tokenizer.ggml.* metadata encodes and decodes as
// the tokenizer.json it was written from; malformed metadata names the key.
#include "inference/gguf_tokenizer.h"

#include <gtest/gtest.h>

#include "base/test_paths.h"
#include "inference/gguf_test_support.h"

namespace mb::inference {
namespace {

using OJson = nlohmann::ordered_json;

// The metadata the test writer produces, as the reader gives it (JSON).
OJson metadata_of(const fs::path& dir, const std::string& pre) {
  GgufMetadata md;
  test::add_tokenizer_metadata(md, dir, pre);
  OJson out = OJson::object();
  for (const auto& e : md.entries()) std::visit([&](const auto& v) { out[e.key] = v; }, e.value);
  return out;
}

const char* const kTexts[] = {
    "Hello there",     "<|im_start|>user\nWhat is 12345 + 678?<|im_end|>\n", "  spaces   and\ttabs\n\n",
    "naïve café 東京", "<tool_call>{\"name\": \"x\"}</tool_call>",           "don't I'LL we've",
};

TEST(GgufTokenizer, EncodesAsTheTokenizerJsonItCameFrom) {
  const fs::path root = mb::test::source_dir();
  for (const fs::path& dir : {root / "tests/golden/models/qwen2-f32", root / "examples/tiny/models/base-4bit"}) {
    auto fs = make_real_file_system();
    Tokenizer want = Tokenizer::load(*fs, dir / "tokenizer.json").value();
    auto got = gguf_tokenizer(metadata_of(dir, "qwen2"), "x.gguf");
    ASSERT_TRUE(got.ok()) << got.error().to_string();
    EXPECT_EQ(got->tokenizer.vocab_size(), want.vocab_size());
    for (const char* text : kTexts) {
      auto ids = want.encode(text).value();
      EXPECT_EQ(got->tokenizer.encode(text).value(), ids) << dir << ": " << text;
      EXPECT_EQ(got->tokenizer.decode(ids, true), want.decode(ids, true)) << text;
      EXPECT_EQ(got->tokenizer.decode(ids), want.decode(ids)) << text;
    }
    TokenizerConfig tc = load_tokenizer_config(*fs, dir, want).value();
    EXPECT_EQ(got->config.eos, tc.eos);
    EXPECT_EQ(got->config.chat_template, tc.chat_template);
    EXPECT_FALSE(got->end_of_generation.empty());
  }
}

TEST(GgufTokenizer, BadMetadataNamesTheKey) {
  const fs::path dir = mb::test::source_dir() / "tests/golden/models/qwen2-f32";
  const OJson good = metadata_of(dir, "qwen2");
  auto expect_bad = [&](OJson md, const std::string& needle, Errc code = Errc::kCorrupt) {
    auto r = gguf_tokenizer(md, "x.gguf");
    ASSERT_FALSE(r.ok()) << needle;
    EXPECT_EQ(r.error().code, code) << r.error().to_string();
    EXPECT_EQ(r.error().where.substr(0, 6), "x.gguf") << r.error().to_string();
    EXPECT_NE(r.error().to_string().find(needle), std::string::npos) << r.error().to_string();
  };
  OJson md = good;
  md.erase("tokenizer.ggml.tokens");
  expect_bad(md, "tokenizer.ggml.tokens: missing");
  md = good;
  md["tokenizer.ggml.tokens"][3] = 7;
  expect_bad(md, "tokenizer.ggml.tokens: element 3 is number");
  md = good;
  md["tokenizer.ggml.token_type"].erase(0);
  expect_bad(md, "tokenizer.ggml.token_type: has 271 entries");
  md = good;
  md["tokenizer.ggml.eos_token_id"] = 100000;
  expect_bad(md, "tokenizer.ggml.eos_token_id: token id 100000");
  md = good;
  md["tokenizer.ggml.merges"][0] = "nosuchtoken Ġ";
  expect_bad(md, "tokenizer.ggml.merges[0]: token \"nosuchtoken\" not in vocab", Errc::kInvalidInput);
  md = good;
  md["tokenizer.ggml.pre"] = "deepseek-coder";
  expect_bad(md, "tokenizer.ggml.pre: pre-tokenizer \"deepseek-coder\"", Errc::kUnsupported);
  md = good;
  md["tokenizer.ggml.model"] = "llama";
  expect_bad(md, "tokenizer.ggml.model", Errc::kUnsupported);
}

}  // namespace
}  // namespace mb::inference
