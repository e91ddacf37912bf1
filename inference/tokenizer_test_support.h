#pragma once
// A small hand-made byte-level BPE vocabulary for the tokenizer tests.
//
// Ids 0..255 are the single bytes: id b is the byte-level character of byte
// b (so " " is id 32, "Ġ" in vocabulary form). Merged tokens start at 256
// and are listed in kTestMerges, in rank order, with their ids. Added
// tokens are 300..307. The byte-level characters are computed here straight
// from the rule in docs/formats/tokenizer.md §2, independently of
// tokenizer_unicode.cc.
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace mb::inference::test {

// Qwen2's split regex, as in tokenizer.json before JSON escaping (tokenizer.md §3).
inline constexpr const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

inline std::string utf8(char32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

inline bool printable_byte(int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

// Vocabulary form of byte `b`.
inline std::string byte_char(int b) {
  if (printable_byte(b)) return utf8(static_cast<char32_t>(b));
  int rank = 0;
  for (int x = 0; x < b; ++x) rank += printable_byte(x) ? 0 : 1;
  return utf8(static_cast<char32_t>(0x100 + rank));
}

struct TestMerge {
  const char* left;
  const char* right;
  int id;  // id of left+right
};

// Rank = position. "b c" outranks "a b", so "abc" is a + bc although a
// left-to-right greedy merge would give ab + c. "Ġ h" exists but ranks after
// "h e", so " he..." never uses it.
inline const std::vector<TestMerge> kTestMerges = {
    {"Ġ", "w", 256}, {"o", "r", 257},   {"l", "d", 258},    {"Ġw", "or", 259}, {"Ġwor", "ld", 260}, {"h", "e", 261},
    {"l", "l", 262}, {"he", "ll", 263}, {"hell", "o", 264}, {"b", "c", 265},   {"a", "b", 266},     {"a", "a", 267},
    {"Ċ", "Ċ", 268}, {"Ġ", "Ġ", 269},   {"'", "s", 270},    {"3", "3", 271},   {"Ġ", "h", 272},
};

enum class MergeForm { kLegacyStrings, kPairs };

inline nlohmann::ordered_json test_added_tokens() {
  auto token = [](int id, const char* content, bool special, bool lstrip = false, bool rstrip = false) {
    return nlohmann::ordered_json{{"id", id},         {"content", content},  {"single_word", false}, {"lstrip", lstrip},
                                  {"rstrip", rstrip}, {"normalized", false}, {"special", special}};
  };
  return nlohmann::ordered_json::array({
      token(300, "<|endoftext|>", true),
      token(301, "<|im_start|>", true),
      token(302, "<|im_end|>", true),
      token(303, "<|im", false),  // a prefix of the two above
      token(304, "<tool_call>", false),
      token(305, "</tool_call>", false),
      token(306, "<mask>", true, /*lstrip=*/true),
      token(307, "<sep>", true, /*lstrip=*/false, /*rstrip=*/true),
  });
}

inline nlohmann::ordered_json qwen2_pre_tokenizer() {
  return {
      {"type", "Sequence"},
      {"pretokenizers",
       nlohmann::ordered_json::array(
           {{{"type", "Split"}, {"pattern", {{"Regex", kQwen2Pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}})}};
}

inline nlohmann::ordered_json gpt2_pre_tokenizer() {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
}

// The whole tokenizer.json document.
inline nlohmann::ordered_json test_tokenizer_doc(MergeForm form = MergeForm::kPairs,
                                                 nlohmann::ordered_json pre_tokenizer = qwen2_pre_tokenizer()) {
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = b;
  nlohmann::ordered_json merges = nlohmann::ordered_json::array();
  for (const TestMerge& m : kTestMerges) {
    vocab[std::string(m.left) + m.right] = m.id;
    if (form == MergeForm::kPairs) {
      merges.push_back({m.left, m.right});
    } else {
      merges.push_back(std::string(m.left) + " " + m.right);
    }
  }
  if (form == MergeForm::kLegacyStrings) merges.insert(merges.begin(), "#version: 0.2");
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", test_added_tokens()},
          {"normalizer", {{"type", "NFC"}}},
          {"pre_tokenizer", std::move(pre_tokenizer)},
          {"post_processor", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}}},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", ""},
            {"end_of_word_suffix", ""},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"ignore_merges", false},
            {"vocab", std::move(vocab)},
            {"merges", std::move(merges)}}}};
}

}  // namespace mb::inference::test
