#pragma once
// PrefixConstraint: constrained decoding that makes a generation begin with
// one of a few fixed texts, then lets it run free. `modelbuild serve` uses it
// for tool_choice: "required" allows `<tool_call>\n{"name": "NAME",
// "arguments": ` for every tool NAME, a named function allows only its own,
// and the model writes the arguments (and picks among the names, by its own
// logits, where there are several).
//
// It works on text, not on token ids: a token is allowed when the text
// generated so far plus the token's text is still a prefix of one of the
// texts, or runs past the end of one. So any tokenization of the prefix is
// allowed (a `<tool_call>` added token or the same text spelled in pieces),
// and the model's own preference picks among them. Tokens with no text
// (special tokens, ids without a token) are never allowed until the prefix
// is complete, so the model cannot end before it.
//
// docs/formats/openai-sse.md ("Forced calls") gives the exact bytes.
//
// Immutable after construction; apply() may be called from any thread.
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace mb::gate {

// The text each token id decodes to on its own, and the ids grouped by the
// first byte of their text: an allowed token starts with the byte the
// prefix needs next, so each step looks only at that group (a few thousand
// of Qwen2.5's 152K tokens). Built once per model.
struct TokenTexts {
  std::vector<std::string> text;
  std::array<std::vector<int32_t>, 256> by_first_byte;

  explicit TokenTexts(std::vector<std::string> texts);
};

class PrefixConstraint {
 public:
  // REQUIRES: `prefixes` is not empty and no prefix is empty.
  PrefixConstraint(std::shared_ptr<const TokenTexts> tokens, std::vector<std::string> prefixes);

  // The GenerateOptions::logits_filter: sets the logits of disallowed
  // tokens to -inf while the prefix is incomplete. Leaves the logits alone
  // if no token at all fits (which a byte-level vocabulary never allows).
  void apply(std::span<const int32_t> generated, std::span<float> logits) const;

  // Whether `text` already starts with one of the prefixes.
  bool complete(std::string_view text) const;

 private:
  std::shared_ptr<const TokenTexts> m_tokens;
  std::vector<std::string> m_prefixes;
};

// Qwen2.5's opening of a call to `name`, up to its arguments.
std::string tool_call_prefix(const std::string& name);

}  // namespace mb::gate
