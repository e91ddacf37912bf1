// libFuzzer target: tokenizer_config.json (special tokens, chat template)
// and the eos_token_id field of config.json / generation_config.json, read
// against a fixed minimal tokenizer.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "inference/tokenizer.h"

namespace {

const mb::inference::Tokenizer& fixed_tokenizer() {
  static const mb::inference::Tokenizer tokenizer = [] {
    auto t = mb::inference::Tokenizer::from_json(
        R"({"added_tokens": [{"id": 2, "content": "<|im_end|>", "special": true}],
            "pre_tokenizer": {"type": "ByteLevel"},
            "model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}})",
        "fixed");
    if (!t.ok()) {
      std::fprintf(stderr, "tokenizer_config_fuzz: the fixed tokenizer does not load: %s\n",
                   t.error().to_string().c_str());
      abort();
    }
    return std::move(t).value();
  }();
  return tokenizer;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)mb::inference::parse_tokenizer_config(fixed_tokenizer(), text);
  (void)mb::inference::parse_eos_token_ids(text, "config.json");
  return 0;
}
