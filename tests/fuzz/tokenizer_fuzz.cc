// libFuzzer entry point for the tokenizer: tokenizer.json parsing, encoding
// and decoding, all from memory. Built with -DMODELBUILD_FUZZ=ON (clang);
// run with scripts/fuzz.sh SECONDS tokenizer_fuzz.
//
// Two kinds of input:
//   - starting with '{': a tokenizer.json document, optionally followed by a
//     NUL byte and a text to encode with it. Loading must fail cleanly or
//     succeed; encoding and decoding must not crash, and streaming decode
//     must agree with decode.
//   - anything else: a text encoded with a fixed small tokenizer (Qwen2
//     regex, all 256 bytes, a few merges, ChatML added tokens, no
//     normalizer). Byte-level BPE loses nothing, so decode(encode(x)) must
//     equal x with invalid UTF-8 replaced by U+FFFD; the fuzzer aborts if not.
//
// Build (clang with libFuzzer; one command, from the repository root):
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I.
//     tests/fuzz/tokenizer_fuzz.cc inference/tokenizer.cc inference/tokenizer_load.cc
//     inference/tokenizer_config.cc inference/tokenizer_unicode.cc inference/tokenizer_document.cc
//     base/result.cc $(pkg-config --cflags --libs libpcre2-8) -lfmt -o tokenizer_fuzz
// Run:
//   ./tokenizer_fuzz -max_len=4096 -rss_limit_mb=2048 corpus_dir/
// A useful seed is any real tokenizer.json followed by a NUL and some text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "inference/tokenizer.h"
#include "inference/tokenizer_unicode.h"

namespace {

using mb::inference::Tokenizer;
using mb::inference::TokenStreamDecoder;

std::string byte_char(int b) {
  std::string s;
  mb::inference::append_utf8(s, mb::inference::byte_to_code_point(static_cast<uint8_t>(b)));
  return s;
}

std::string escape_json(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

const Tokenizer& fixed_tokenizer() {
  static const Tokenizer tokenizer = [] {
    std::string vocab;
    for (int b = 0; b < 256; ++b) vocab += "\"" + escape_json(byte_char(b)) + "\": " + std::to_string(b) + ", ";
    vocab += "\"he\": 256, \"ll\": 257, \"hell\": 258, \"hello\": 259, \"\xC4\xA0w\": 260, \"\xC4\xA0\xC4\xA0\": 261";
    std::string json = R"({"added_tokens": [
      {"id": 300, "content": "<|im_start|>", "special": true, "normalized": false},
      {"id": 301, "content": "<|im_end|>", "special": true, "normalized": false},
      {"id": 302, "content": "<tool_call>", "special": false, "normalized": false}],
      "normalizer": null,
      "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "behavior": "Isolated", "invert": false, "pattern": {"Regex":
          "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
        {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]},
      "decoder": {"type": "ByteLevel"},
      "model": {"type": "BPE", "vocab": {)" +
                       vocab + R"(}, "merges": ["h e", "l l", "he ll", "hell o", "Ġ w", "Ġ Ġ"]}})";
    auto t = Tokenizer::from_json(json, "fixed");
    if (!t.ok()) abort();
    return std::move(t).value();
  }();
  return tokenizer;
}

void exercise(const Tokenizer& tokenizer, std::string_view text, bool check_round_trip) {
  auto ids = tokenizer.encode(text);
  if (!ids.ok()) return;
  std::string decoded = tokenizer.decode(*ids);
  if (check_round_trip && decoded != mb::inference::utf8_lossy(text)) abort();
  for (bool skip : {false, true}) {
    TokenStreamDecoder stream(tokenizer, skip);
    std::string streamed;
    for (int32_t id : *ids) streamed += stream.push(id);
    streamed += stream.finish();
    if (streamed != tokenizer.decode(*ids, skip)) abort();
  }
  (void)tokenizer.encode_ordinary(text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (input.empty() || input[0] != '{') {
    exercise(fixed_tokenizer(), input, /*check_round_trip=*/true);
    return 0;
  }
  size_t nul = input.find('\0');
  std::string_view json = input.substr(0, nul);
  std::string_view text =
      nul == std::string_view::npos ? std::string_view("Hello, world! 123 <|im_end|>\n") : input.substr(nul + 1);
  auto tokenizer = Tokenizer::from_json(json, "fuzz");
  if (tokenizer.ok()) exercise(*tokenizer, text, /*check_round_trip=*/false);
  return 0;
}
