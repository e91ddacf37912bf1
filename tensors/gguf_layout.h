#pragma once
// GGUF v3 header encoding (docs/formats/gguf.md): metadata and tensor
// records become the exact header bytes, with each tensor's offset the
// running sum of the padded sizes in record order, so a writer can emit the
// header first and then stream tensors one by one. Equal inputs give equal
// bytes: entries keep the order in which they were added.
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
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

// One metadata value of the types modelbuild writes (docs/formats/gguf.md,
// "Value types"): string, u32, i32, f32, bool and non-empty arrays of
// string / i32 / f32.
using GgufValue = std::variant<std::string, uint32_t, int32_t, float, bool, std::vector<std::string>,
                               std::vector<int32_t>, std::vector<float>>;

// The writer's input: typed key/value pairs in the order they are written.
// Adding a key that is already present replaces its value in place, so the
// order stays that of the first add.
class GgufMetadata {
 public:
  struct Entry {
    std::string key;
    GgufValue value;
  };
  void add_string(const std::string& key, std::string value) { set(key, std::move(value)); }
  void add_u32(const std::string& key, uint32_t value) { set(key, value); }
  void add_i32(const std::string& key, int32_t value) { set(key, value); }
  void add_f32(const std::string& key, float value) { set(key, value); }
  void add_bool(const std::string& key, bool value) { set(key, value); }
  void add_strings(const std::string& key, std::vector<std::string> value) { set(key, std::move(value)); }
  void add_i32s(const std::string& key, std::vector<int32_t> value) { set(key, std::move(value)); }
  void add_f32s(const std::string& key, std::vector<float> value) { set(key, std::move(value)); }

  const std::vector<Entry>& entries() const { return m_entries; }
  // nullptr when absent.
  const GgufValue* find(std::string_view key) const;

 private:
  void set(const std::string& key, GgufValue value);
  std::vector<Entry> m_entries;
};

class GgufLayout {
 public:
  // The caller adds general.alignment = kGgufAlignment (u32) itself.
  void add_string(const std::string& key, const std::string& value);
  void add_u32(const std::string& key, uint32_t value);
  void add_i32(const std::string& key, int32_t value);
  void add_f32(const std::string& key, float value);
  void add_bool(const std::string& key, bool value);
  void add_strings(const std::string& key, const std::vector<std::string>& value);
  void add_i32s(const std::string& key, const std::vector<int32_t>& value);
  void add_f32s(const std::string& key, const std::vector<float>& value);
  // Every entry of `metadata`, in its order.
  void add_metadata(const GgufMetadata& metadata);
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
