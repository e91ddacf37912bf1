#pragma once
// Internals of Tokenizer shared by tokenizer.cc (encode/decode) and
// tokenizer_load.cc (tokenizer.json parsing). Not part of the public API.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "inference/tokenizer.h"

struct pcre2_real_code_8;

namespace mb::inference {

struct RegexDeleter {
  void operator()(pcre2_real_code_8* code) const;
};
using Regex = std::unique_ptr<pcre2_real_code_8, RegexDeleter>;

// Compiles a tokenizer.json split pattern with PCRE2 (UTF, UCP, and
// MATCH_INVALID_UTF so raw non-UTF-8 input cannot make matching fail: invalid
// bytes simply match nothing and end up in the gaps between matches).
Result<Regex> compile_split_regex(std::string_view pattern, std::string_view where);

// Leftmost-longest matching of added-token contents: a byte trie, walked from
// each candidate start. Matching costs O(text length x longest token).
class AddedTokenMatcher {
 public:
  void add(std::string_view content, int32_t index);
  bool empty() const { return m_nodes.size() == 1; }
  bool may_start(uint8_t byte) const { return m_first[byte]; }
  // Index of the longest token that starts at text[pos] (and its length in
  // `len`), or -1.
  int32_t longest_at(std::string_view text, size_t pos, size_t& len) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> next;  // few children: linear scan
    int32_t token = -1;
  };
  int32_t child(int32_t node, uint8_t byte) const;

  std::vector<Node> m_nodes = std::vector<Node>(1);
  std::array<bool, 256> m_first{};
};

// Hash map from token string to id that looks up by string_view without
// building a std::string (C++20 heterogeneous lookup).
struct StringViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringIdMap = std::unordered_map<std::string, int32_t, StringViewHash, std::equal_to<>>;

struct MergeRule {
  int32_t rank = 0;
  int32_t merged = 0;  // id of the token left+right
};

inline uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

struct Tokenizer::Impl {
  // Token strings in vocabulary form, by id ("" for ids no token has).
  std::vector<std::string> id_to_token;
  // What each id decodes to, before UTF-8 repair.
  std::vector<std::string> id_bytes;
  std::vector<uint8_t> id_flags;  // kAdded | kSpecial
  static constexpr uint8_t kAdded = 1;
  static constexpr uint8_t kSpecial = 2;

  StringIdMap vocab;                               // model.vocab
  std::unordered_map<uint64_t, MergeRule> merges;  // (left id, right id) -> rule
  std::array<int32_t, 256> byte_ids{};             // token of each single byte, -1 if none
  int32_t unk_id = -1;
  bool fuse_unk = false;
  bool ignore_merges = false;
  bool nfc = false;

  std::vector<AddedToken> added;
  StringIdMap added_by_content;
  AddedTokenMatcher raw_matcher;         // added tokens with normalized: false
  AddedTokenMatcher normalized_matcher;  // added tokens with normalized: true

  // Pre-tokenizer: each regex splits every piece of the previous one
  // (Isolated: matches and the gaps between them all become pieces).
  std::vector<Regex> split_regexes;

  // Encoded words, keyed by their raw bytes. Bounded: cleared when full.
  static constexpr size_t kCacheEntries = 1 << 15;
  static constexpr size_t kCacheMaxWord = 64;
  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringViewHash, std::equal_to<>> cache;

  Status encode(std::string_view text, bool parse_added, std::vector<int32_t>& out) const;

 private:
  Status encode_normalized(std::string_view text, bool parse_added, std::vector<int32_t>& out) const;
  Status encode_plain(std::string_view text, std::vector<int32_t>& out) const;
  Status bpe(std::string_view piece, std::vector<int32_t>& out) const;
  Status bpe_uncached(std::string_view piece, std::vector<int32_t>& out) const;
};

}  // namespace mb::inference
