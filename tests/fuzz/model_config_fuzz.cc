// libFuzzer target: a base model's config.json.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "inference/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)mb::inference::parse_model_config(text, "config.json");
  return 0;
}
