// libFuzzer target: a gate's suite YAML.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "gate/suite.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)mb::gate::parse_suite(text, "suite.yaml");
  return 0;
}
