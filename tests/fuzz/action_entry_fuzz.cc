// libFuzzer target: an action-cache entry (docs/cache-format.md), as read
// back from ac/<key>.json: JSON parsing, then validation.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "cache/action_cache.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;
  (void)mb::entry_from_json(json, "ac/fuzz.json");
  return 0;
}
