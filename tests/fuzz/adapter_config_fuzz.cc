// libFuzzer target: adapter_config.json, read both as a PEFT and as an MLX
// adapter configuration.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tensors/adapters.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)mb::parse_peft_config(text, "adapter_config.json");
  (void)mb::parse_mlx_adapter_config(text, "adapter_config.json");
  return 0;
}
