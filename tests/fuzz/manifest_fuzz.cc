// libFuzzer target: a release manifest.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "release/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)mb::parse_manifest(text, "manifest.json");
  return 0;
}
