#pragma once
// TokenizerDocument: tokenizer.json read in one pass, with model.vocab and
// model.merges streamed into flat vectors instead of JSON nodes.
//
// A Qwen2 tokenizer.json holds ~150k vocabulary entries and ~150k merges;
// building nlohmann::json nodes for them cost most of the load time (about
// 0.7 s of 1.1 s), while the rest of the file is a few kilobytes. Internal to
// the tokenizer (tokenizer_load.cc).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace mb::inference {

struct TokenizerDocument {
  // Everything else. When model.vocab / model.merges are an object / an
  // array they appear here empty, with their contents in the fields below;
  // any other type appears as it is.
  nlohmann::json root;

  // model.vocab entries in file order. Ids are as written (range checks are
  // the loader's); the first entry whose id is not an integer is reported in
  // `vocab_error` as `model.vocab["x"]: expected a token id, got string`.
  std::vector<std::pair<std::string, int64_t>> vocab;
  std::string vocab_error;

  enum class MergeKind : uint8_t { kLegacy, kPair, kBad };
  struct Merge {
    MergeKind kind = MergeKind::kBad;
    std::string left;   // kLegacy: the whole "left right" string
    std::string right;  // kPair only
  };
  std::vector<Merge> merges;
};

// kInvalidInput "not valid JSON: ..." (with the byte position) on syntax errors.
Result<TokenizerDocument> read_tokenizer_document(std::string_view text, std::string_view where);

class Tokenizer;
// The tokenizer a document describes (what Tokenizer::from_json does after
// reading the text); for documents built in memory, e.g. from GGUF metadata.
Result<Tokenizer> tokenizer_from_document(const TokenizerDocument& doc, std::string_view where);

}  // namespace mb::inference
