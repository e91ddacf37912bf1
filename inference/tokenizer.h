#pragma once
// Tokenizer: byte-level BPE loaded from a Hugging Face tokenizer.json, as
// Qwen2/Qwen2.5 (and GPT-2, Llama 3) ship it. docs/formats/tokenizer.md.
//
// Encoding: added tokens are cut out of the raw text first (leftmost-
// longest); the text between them is NFC-normalized when the file asks for it
// (and the build has ICU), split by the pre-tokenizer regexes (PCRE2, UTF +
// UCP), mapped byte by byte to GPT-2's byte-level characters and merged by
// rank. No BOS or EOS is ever added: the chat template writes what it needs.
// Decoding maps characters back to bytes and repairs invalid UTF-8 with
// U+FFFD; TokenStreamDecoder does the same incrementally.
//
// A Tokenizer is immutable after loading except for an internal, mutex-guarded
// cache of encoded words, so one instance may be shared between threads.
// Files that use features this class does not implement (single_word added
// tokens, byte_fallback, Split behaviours other than Isolated, ...) are
// rejected at load with Errc::kUnsupported naming the JSON key.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/fs.h"
#include "base/result.h"

namespace mb::inference {

// One entry of tokenizer.json `added_tokens`.
struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;     // dropped by decode(skip_special = true)
  bool normalized = false;  // matched after normalization instead of on raw text
  bool lstrip = false;      // absorbs the whitespace on its left
  bool rstrip = false;      // absorbs the whitespace on its right
};

class Tokenizer {
 public:
  // Parses tokenizer.json text. `where` names the file in error messages.
  static Result<Tokenizer> from_json(std::string_view json_text, std::string_view where = "tokenizer.json");
  // Reads `path` through `fs` and parses it.
  static Result<Tokenizer> load(const FileSystem& fs, const fs::path& path);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Token ids for `text`; added tokens written in the text become their ids.
  // Fails only when a byte has no token and the model has no unk_token
  // (impossible with a complete byte-level vocabulary).
  Result<std::vector<int32_t>> encode(std::string_view text) const;
  // Same, but added tokens in `text` are encoded as plain text (HF's
  // split_special_tokens=True): for untrusted content that must not be able
  // to forge <|im_end|>.
  Result<std::vector<int32_t>> encode_ordinary(std::string_view text) const;

  // Text of `ids` as valid UTF-8 (invalid byte sequences become U+FFFD).
  // Unknown ids are skipped. `skip_special` drops added tokens flagged
  // special (<|im_end|>), but keeps non-special ones (<tool_call>).
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;
  // The raw bytes one token stands for (no UTF-8 repair); "" for unknown ids.
  const std::string& token_bytes(int32_t id) const;

  // Id of a token given in its vocabulary form ("Ġworld", "<|im_end|>").
  std::optional<int32_t> token_id(std::string_view token) const;
  // Vocabulary form of `id`; "" when no token has that id.
  const std::string& id_to_token(int32_t id) const;
  bool is_added(int32_t id) const;
  bool is_special(int32_t id) const;
  // Largest id + 1 over the vocabulary and the added tokens.
  int32_t vocab_size() const;
  const std::vector<AddedToken>& added_tokens() const;
  // True when the file asks for NFC; encode applies it when nfc_available().
  bool wants_nfc() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  friend class TokenizerLoader;
  friend class TokenStreamDecoder;

  std::unique_ptr<Impl> m_impl;
};

// Decodes a generation token by token. push() returns the text that became
// final with that token: a trailing incomplete UTF-8 sequence is held back
// until the next token completes it (or finish() gives it up as U+FFFD). The
// concatenation of everything returned equals decode() of all the tokens.
// Not thread-safe; borrows `tokenizer`, which must outlive it.
class TokenStreamDecoder {
 public:
  explicit TokenStreamDecoder(const Tokenizer& tokenizer, bool skip_special = false);

  std::string push(int32_t id);
  std::string finish();

 private:
  const Tokenizer& m_tokenizer;
  bool m_skip_special;
  std::string m_pending;  // bytes not yet returned
};

// What tokenizer_config.json says about special tokens. Each *_token field
// may be a string, an {"content": ...} object or null there.
struct TokenizerConfig {
  std::optional<int32_t> bos;
  std::optional<int32_t> eos;
  std::optional<int32_t> pad;
  bool add_bos_token = false;
  std::string chat_template;  // raw Jinja text; "" when absent
};

Result<TokenizerConfig> parse_tokenizer_config(const Tokenizer& tokenizer, std::string_view json_text,
                                               std::string_view where = "tokenizer_config.json");

// `eos_token_id` of config.json or generation_config.json: an integer, a
// list of integers, null or absent (empty result).
Result<std::vector<int32_t>> parse_eos_token_ids(std::string_view json_text, std::string_view where);

// Every token id that ends a generation, in increasing order without
// duplicates: tokenizer_config's eos, `extra_ids` (from config.json and
// generation_config.json), and the added tokens that end a turn by name in
// the families we serve (<|im_end|>, <|endoftext|>, <|eot_id|>,
// <|end_of_text|>, <|eom_id|>), as llama.cpp also does.
std::vector<int32_t> end_of_generation_ids(const Tokenizer& tokenizer, const TokenizerConfig& config,
                                           std::span<const int32_t> extra_ids);

// Reads `model_dir`/tokenizer_config.json; defaults when the file is absent.
Result<TokenizerConfig> load_tokenizer_config(const FileSystem& fs, const fs::path& model_dir,
                                              const Tokenizer& tokenizer);

// Convenience for the engine: reads tokenizer_config.json, config.json and
// generation_config.json from `model_dir` (each optional; a present but
// malformed file is an error) and returns end_of_generation_ids() of them.
Result<std::vector<int32_t>> load_end_of_generation_ids(const FileSystem& fs, const fs::path& model_dir,
                                                        const Tokenizer& tokenizer);

}  // namespace mb::inference
