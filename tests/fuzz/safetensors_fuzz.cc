// libFuzzer target: the safetensors header of an untrusted file
// (docs/formats/safetensors.md). Parsing must fail cleanly or succeed.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "tensors/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const std::byte> file(reinterpret_cast<const std::byte*>(data), size);
  (void)mb::parse_safetensors_header(file, "fuzz.safetensors");
  return 0;
}
