#pragma once
// The metadata of a GGUF export (docs/formats/gguf.md, "Architecture
// metadata" and "Tokenizer metadata"): architecture keys from config.json,
// tokenizer keys from tokenizer.json + tokenizer_config.json, read with the
// engine's own parsers (inference::parse_model_config, inference::Tokenizer,
// inference::parse_tokenizer_config) so that the file and the engine agree.
//
// Errors name the file and key: kUnsupported for an architecture with no
// GGUF mapping, kInvalidInput for a missing or malformed tokenizer file.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/result.h"
#include "inference/model_config.h"
#include "tensors/gguf_layout.h"
#include "tensors/gguf_type_choice.h"

namespace mb {

// config.json's facts, validated for export. `where` names config.json.
struct GgufModelFacts {
  inference::ModelConfig config;
  std::string arch;           // "qwen2", "llama", "qwen3"
  bool has_head_dim = false;  // config.json states head_dim
  int64_t vocab_size = 0;     // config.json vocab_size: the embedding rows
};
Result<GgufModelFacts> gguf_model_facts(const nlohmann::ordered_json& config, const std::string& where);

// general.* and ARCH.* keys. `name` becomes general.name.
void add_gguf_arch_metadata(GgufMetadata& md, const GgufModelFacts& facts, const std::string& name,
                            GgufFileType file_type, bool any_quantized);

// tokenizer.* keys from `model_dir`'s tokenizer.json and
// tokenizer_config.json (both required); `config` is config.json, the
// fallback for bos/eos/padding ids.
Status add_gguf_tokenizer_metadata(GgufMetadata& md, const FileSystem& fs, const fs::path& model_dir,
                                   const GgufModelFacts& facts, const nlohmann::ordered_json& config);

// Everything above, in the order written.
Result<GgufMetadata> build_gguf_metadata(const FileSystem& fs, const fs::path& model_dir,
                                         const nlohmann::ordered_json& config, const std::string& name,
                                         GgufFileType file_type, bool any_quantized);

// llama's rope_freqs.weight (head_dim / 2 factors) for Llama 3 rope scaling,
// as llama.cpp reads them; empty for every other rope.
std::vector<float> gguf_rope_freqs(const GgufModelFacts& facts);

// The tokenizer.ggml.token_type of an added token's text: 3 (control) when
// flagged special or written like one (<|...|>), else 4 (user defined).
int32_t gguf_added_token_type(const std::string& content, bool special);

}  // namespace mb
