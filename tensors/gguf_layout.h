#pragma once
// GGUF v3 header encoding (docs/formats/gguf.md): metadata and tensor
// records become the exact header bytes, with each tensor's offset the
// running sum of the padded sizes in record order, so a writer can emit the
// header first and then stream tensors one by one. Equal inputs give equal
// bytes: entries keep the order in which they were added.
#include <cstdint>
#include <string>
#include <vector>

namespace mb {

inline constexpr uint64_t kGgufAlignment = 32;

// One tensor record; dims are innermost first (the torch shape reversed).
struct GgufTensorRecord {
  std::string name;
  std::vector<uint64_t> dims;
  uint32_t ggml_type = 0;
  uint64_t byte_size = 0;
};

class GgufLayout {
 public:
  // The caller adds general.alignment = kGgufAlignment (u32) itself.
  void add_string(const std::string& key, const std::string& value);
  void add_u32(const std::string& key, uint32_t value);
  void add_f32(const std::string& key, float value);
  void add_bool(const std::string& key, bool value);
  void add_tensor(GgufTensorRecord record);

  // The header including padding to the data section.
  std::string header() const;
  // Offset of tensor i from the start of the data section.
  uint64_t offset(size_t i) const;
  static uint64_t padded(uint64_t n);

 private:
  void add_key(const std::string& key, uint32_t type);
  std::string kv_bytes_;
  uint64_t kv_count_ = 0;
  std::vector<GgufTensorRecord> tensors_;
};

}  // namespace mb
