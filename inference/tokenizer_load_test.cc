// tokenizer.json errors, unsupported features, and the special-token helpers
// for tokenizer_config.json / config.json / generation_config.json.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <functional>

#include "base/fs.h"
#include "base/fs_test_support.h"
#include "base/test_paths.h"
#include "inference/tokenizer.h"
#include "inference/tokenizer_test_support.h"
#include "inference/tokenizer_unicode.h"

namespace mb::inference {
namespace {

using OJson = nlohmann::ordered_json;

Error load_error(const OJson& doc) {
  Result<Tokenizer> t = Tokenizer::from_json(doc.dump(), "m/tokenizer.json");
  EXPECT_FALSE(t.ok());
  return t.ok() ? Error{} : t.error();
}

OJson doc() { return test::test_tokenizer_doc(); }

TEST(TokenizerLoadTest, MergeOfUnknownTokenNamesFileAndKey) {
  OJson d = doc();
  d["model"]["merges"][1] = OJson::array({"x", "y"});
  Error e = load_error(d);
  EXPECT_EQ(e.code, Errc::kInvalidInput);
  EXPECT_EQ(e.to_string(), "m/tokenizer.json: model.merges[1]: token \"xy\" not in vocab");
}

TEST(TokenizerLoadTest, LegacyMergeMustBeTwoTokens) {
  OJson d = test::test_tokenizer_doc(test::MergeForm::kLegacyStrings);
  d["model"]["merges"][3] = "a b c";
  EXPECT_EQ(load_error(d).to_string(),
            "m/tokenizer.json: model.merges[3]: \"a b c\" is not two tokens separated by one space");
  d["model"]["merges"][3] = OJson::array({"a"});
  EXPECT_EQ(load_error(d).to_string(),
            "m/tokenizer.json: model.merges[3]: expected \"left right\" or [\"left\", \"right\"]");
}

TEST(TokenizerLoadTest, MalformedDocuments) {
  Result<Tokenizer> t = Tokenizer::from_json("{\"model\": ", "m/tokenizer.json");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, Errc::kInvalidInput);
  EXPECT_NE(t.error().to_string().find("m/tokenizer.json: not valid JSON"), std::string::npos);

  OJson d = doc();
  d["model"].erase("vocab");
  EXPECT_EQ(load_error(d).to_string(), "m/tokenizer.json: model.vocab: missing or not an object");

  d = doc();
  d["model"]["vocab"]["Ġworld"] = "260";
  EXPECT_EQ(load_error(d).to_string(), "m/tokenizer.json: model.vocab[\"Ġworld\"]: expected a token id, got string");

  d = doc();
  d["model"]["vocab"]["dup"] = 5;
  EXPECT_NE(load_error(d).to_string().find("id 5 is also used by"), std::string::npos);

  d = doc();
  d["added_tokens"][2]["id"] = -3;
  EXPECT_EQ(load_error(d).to_string(), "m/tokenizer.json: added_tokens[2].id: token id -3 out of range 0..2097151");

  d = doc();
  d["added_tokens"][0]["special"] = "yes";
  EXPECT_EQ(load_error(d).to_string(), "m/tokenizer.json: added_tokens[0].special: expected true or false, got string");

  EXPECT_EQ(load_error(OJson::array()).to_string(), "m/tokenizer.json: the top level must be an object, not array");
}

TEST(TokenizerLoadTest, UnsupportedFeaturesAreNamed) {
  struct Case {
    std::function<void(OJson&)> edit;
    std::string message;
  };
  std::vector<Case> cases = {
      {[](OJson& d) { d["model"]["type"] = "Unigram"; },
       "m/tokenizer.json: model.type: \"Unigram\" is not supported (only byte-level \"BPE\")"},
      {[](OJson& d) { d["model"]["byte_fallback"] = true; },
       "m/tokenizer.json: model.byte_fallback: byte_fallback BPE (SentencePiece style) is not supported"},
      {[](OJson& d) { d["added_tokens"][4]["single_word"] = true; },
       "m/tokenizer.json: added_tokens[4].single_word: added token \"<tool_call>\" needs word-boundary matching, "
       "which is not implemented"},
      {[](OJson& d) {
         d["normalizer"] = {{"type", "Lowercase"}};
       },
       "m/tokenizer.json: normalizer.type: normalizer \"Lowercase\" is not supported (only NFC)"},
      {[](OJson& d) { d["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed"; },
       "m/tokenizer.json: pre_tokenizer.pretokenizers[0].behavior: only \"Isolated\" is supported"},
      {[](OJson& d) { d["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = true; },
       "m/tokenizer.json: pre_tokenizer.pretokenizers[1].add_prefix_space: add_prefix_space: true is not supported"},
      {[](OJson& d) {
         d["pre_tokenizer"] = {{"type", "Metaspace"}};
       },
       "m/tokenizer.json: pre_tokenizer.type: pre-tokenizer \"Metaspace\" is not supported (only Split and "
       "ByteLevel)"},
      {[](OJson& d) { d["pre_tokenizer"]["pretokenizers"].erase(1); },
       "m/tokenizer.json: pre_tokenizer: has no ByteLevel step; only byte-level BPE is supported"},
      {[](OJson& d) {
         d["decoder"] = {{"type", "Metaspace"}};
       },
       "m/tokenizer.json: decoder.type: only the ByteLevel decoder is supported"},
  };
  for (const Case& c : cases) {
    OJson d = doc();
    c.edit(d);
    Error e = load_error(d);
    EXPECT_EQ(e.code, Errc::kUnsupported) << c.message;
    EXPECT_EQ(e.to_string(), c.message);
  }
}

TEST(TokenizerLoadTest, BadRegexNamesThePattern) {
  OJson d = doc();
  d["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
  Error e = load_error(d);
  EXPECT_EQ(e.code, Errc::kInvalidInput);
  EXPECT_NE(e.to_string().find("m/tokenizer.json: pre_tokenizer.pretokenizers[0].pattern: regex does not compile"),
            std::string::npos)
      << e.to_string();
}

TEST(TokenizerLoadTest, StringSplitPatternIsLiteral) {
  OJson d = doc();
  // Split on "." (a literal, not "any character"), then bytes.
  d["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"String", "."}};
  Result<Tokenizer> t = Tokenizer::from_json(d.dump());
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  Result<std::vector<int32_t>> ids = t->encode("aa.aa");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<int32_t>{267, '.', 267}));
}

TEST(TokenizerLoadTest, IgnoreMergesTakesWholeWordsFromTheVocab) {
  OJson d = doc();
  d["model"]["ignore_merges"] = true;
  d["model"]["vocab"]["abc"] = 299;  // no merge builds it
  Result<Tokenizer> t = Tokenizer::from_json(d.dump());
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  EXPECT_EQ(*t->encode("abc"), (std::vector<int32_t>{299}));
  EXPECT_EQ(*t->encode("abcd"), (std::vector<int32_t>{'a', 265, 'd'}));
}

TEST(TokenizerLoadTest, NormalizedAddedTokensMatchAfterNfc) {
  OJson d = doc();
  d["added_tokens"].push_back({{"id", 299}, {"content", "caf\xC3\xA9"}, {"normalized", true}, {"special", false}});
  Result<Tokenizer> t = Tokenizer::from_json(d.dump());
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  EXPECT_EQ(*t->encode("xcaf\xC3\xA9<|im_end|>"), (std::vector<int32_t>{'x', 299, 302}));
  EXPECT_EQ(*t->encode_ordinary("caf\xC3\xA9"), (std::vector<int32_t>{'c', 'a', 'f', 0xC3, 0xA9}));
  if (nfc_available()) {
    // Written with a combining accent, it only matches after NFC.
    EXPECT_EQ(*t->encode("xcafe\xCC\x81"), (std::vector<int32_t>{'x', 299}));
  }
}

TEST(TokenizerLoadTest, MissingByteTokenIsAnEncodeError) {
  OJson d = doc();
  d["model"]["vocab"].erase(test::byte_char(0x01));
  Result<Tokenizer> t = Tokenizer::from_json(d.dump());
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  Result<std::vector<int32_t>> ids = t->encode("a\x01");
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.error().message, "the tokenizer has no token for byte 0x01 and no unk_token");
}

TEST(TokenizerLoadTest, LoadsThroughTheFileSystem) {
  MemoryFileSystem fs;
  ASSERT_TRUE(fs.create_dirs("/m").ok());
  ASSERT_TRUE(write_file_atomic(fs, "/m/tokenizer.json", doc().dump()).ok());
  Result<Tokenizer> t = Tokenizer::load(fs, "/m/tokenizer.json");
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  EXPECT_EQ(t->vocab_size(), 308);
  Result<Tokenizer> missing = Tokenizer::load(fs, "/m/nope.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::kNotFound);
}

class TokenizerConfigTest : public ::testing::Test {
 protected:
  Tokenizer m_tok = std::move(Tokenizer::from_json(test::test_tokenizer_doc().dump())).value();
};

TEST_F(TokenizerConfigTest, TokensAsStringsObjectsOrNull) {
  Result<TokenizerConfig> c = parse_tokenizer_config(m_tok, R"({
    "add_bos_token": false, "bos_token": null, "eos_token": "<|im_end|>",
    "pad_token": {"content": "<|endoftext|>", "lstrip": false}, "chat_template": "{{ x }}"})");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->bos, std::nullopt);
  EXPECT_EQ(c->eos, 302);
  EXPECT_EQ(c->pad, 300);
  EXPECT_FALSE(c->add_bos_token);
  EXPECT_EQ(c->chat_template, "{{ x }}");
}

TEST_F(TokenizerConfigTest, NamedTemplateListAndUnknownTokens) {
  Result<TokenizerConfig> c =
      parse_tokenizer_config(m_tok, R"({"bos_token": "<s>", "eos_token": {"content": "<|im_end|>"},
    "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]})");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->bos, std::nullopt);  // unknown bos: left unset
  EXPECT_EQ(c->chat_template, "D");
  Result<TokenizerConfig> bad = parse_tokenizer_config(m_tok, R"({"eos_token": "</s>"})", "m/tokenizer_config.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().to_string(), "m/tokenizer_config.json: eos_token: \"</s>\" is not a token of tokenizer.json");
}

TEST_F(TokenizerConfigTest, EosIdsFromConfigFiles) {
  EXPECT_EQ(*parse_eos_token_ids(R"({"eos_token_id": 302})", "config.json"), (std::vector<int32_t>{302}));
  EXPECT_EQ(*parse_eos_token_ids(R"({"eos_token_id": [302, 300]})", "g.json"), (std::vector<int32_t>{302, 300}));
  EXPECT_TRUE(parse_eos_token_ids(R"({"eos_token_id": null})", "g.json")->empty());
  EXPECT_TRUE(parse_eos_token_ids(R"({})", "g.json")->empty());
  Result<std::vector<int32_t>> bad = parse_eos_token_ids(R"({"eos_token_id": "x"})", "g.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().to_string(), "g.json: eos_token_id: expected token ids, got \"x\"");
}

TEST_F(TokenizerConfigTest, EndOfGenerationIdsFromAModelDirectory) {
  MemoryFileSystem fs;
  ASSERT_TRUE(fs.create_dirs("/m").ok());
  // Only <|endoftext|> and <|im_end|> are named; 7 comes from generation_config.
  ASSERT_TRUE(write_file_atomic(fs, "/m/tokenizer_config.json", R"({"eos_token": "<|im_end|>"})").ok());
  ASSERT_TRUE(write_file_atomic(fs, "/m/generation_config.json", R"({"eos_token_id": [7, 302]})").ok());
  Result<std::vector<int32_t>> ids = load_end_of_generation_ids(fs, "/m", m_tok);
  ASSERT_TRUE(ids.ok()) << ids.error().to_string();
  EXPECT_EQ(*ids, (std::vector<int32_t>{7, 300, 302}));

  ASSERT_TRUE(write_file_atomic(fs, "/m/config.json", "{oops").ok());
  Result<std::vector<int32_t>> bad = load_end_of_generation_ids(fs, "/m", m_tok);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().to_string().find("/m/config.json: not valid JSON"), std::string::npos);
}

}  // namespace
}  // namespace mb::inference

namespace mb::inference {
namespace {

std::filesystem::path golden_model_dir(const char* name) {
  return mb::test::source_dir() / "tests" / "golden" / "models" / name;
}

// The golden models ship a real-format tokenizer.json written by
// tests/reference/make_golden.py (bytes are ids 0..255, 13 merges, ChatML
// specials at 269..271). Expected ids worked out by hand from its merges.
TEST(TokenizerGoldenTest, GoldenModelTokenizer) {
  auto fs = make_real_file_system();
  std::filesystem::path dir = golden_model_dir("qwen2-f32");
  Result<Tokenizer> t = Tokenizer::load(*fs, dir / "tokenizer.json");
  ASSERT_TRUE(t.ok()) << t.error().to_string();
  // "user" -> u s er; "the" -> t he; " weather" -> Ġw e at he r.
  Result<std::vector<int32_t>> ids = t->encode("<|im_start|>user\nthe weather<|im_end|>");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<int32_t>{270, 'u', 's', 261, 10, 't', 257, 267, 'e', 265, 257, 'r', 271}));
  EXPECT_EQ(t->decode(*ids), "<|im_start|>user\nthe weather<|im_end|>");
  Result<std::vector<int32_t>> eog = load_end_of_generation_ids(*fs, dir, *t);
  ASSERT_TRUE(eog.ok()) << eog.error().to_string();
  EXPECT_EQ(*eog, (std::vector<int32_t>{269, 271}));
}

}  // namespace
}  // namespace mb::inference
