// libFuzzer target: an untrusted GGUF file (docs/formats/gguf.md, "What the
// reader rejects"). Opening must fail cleanly or succeed; after success every
// metadata value serializes and every tensor's bytes lie inside the buffer
// and decode (small tensors only, to keep runs fast).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tensors/gguf_reader.h"
#include "tensors/safetensors.h"

namespace {
constexpr uint64_t kMaxDecodedValues = uint64_t{1} << 16;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  mb::Result<mb::GgufFile> file = mb::GgufFile::from_mapping(mb::make_memory_mapping(std::move(bytes)), "fuzz.gguf");
  if (!file) return 0;
  (void)file.value().metadata().dump();
  for (const mb::GgufTensorInfo& t : file.value().tensors()) {
    std::span<const uint8_t> b = file.value().bytes(t);
    if (b.size() != t.byte_size || t.offset + t.byte_size > file.value().file_size()) __builtin_trap();
    if (t.numel() > kMaxDecodedValues) continue;
    std::vector<float> values(t.numel());
    mb::dequantize_rows(t.type, b.data(), static_cast<int64_t>(t.rows()), static_cast<int64_t>(t.row_length()),
                        values.data());
  }
  return 0;
}
