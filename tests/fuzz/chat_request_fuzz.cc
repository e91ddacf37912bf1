// libFuzzer target: the JSON body of a POST /v1/chat/completions to
// `modelbuild serve`, which faces the network.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "gate/chat_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  (void)mb::gate::parse_chat_request(body, 16);
  return 0;
}
