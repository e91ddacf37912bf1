#pragma once
// The tokenizer of a GGUF file, from its tokenizer.ggml.* metadata alone
// (docs/formats/gguf.md, "Tokenizer metadata"; how the engine reads it back:
// docs/formats/tokenizer.md, "From GGUF metadata"), so that a lone .gguf
// file runs without tokenizer.json or tokenizer_config.json.
//
// Only byte-level BPE ("gpt2") is read. The pre-tokenizer name selects the
// split regex the named family uses (qwen2, llama-bpe, gpt2); any other name
// is Errc::kUnsupported naming the key. Every malformed value is an error
// naming the file (`where`) and the key.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/result.h"
#include "inference/tokenizer.h"

namespace mb::inference {

struct GgufTokenizer {
  Tokenizer tokenizer;
  TokenizerConfig config;  // bos/eos/pad ids, add_bos_token, chat_template
  std::vector<int32_t> end_of_generation;
};

Result<GgufTokenizer> gguf_tokenizer(const nlohmann::ordered_json& metadata, const std::string& where);

}  // namespace mb::inference
