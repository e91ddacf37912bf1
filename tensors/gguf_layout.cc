#include "tensors/gguf_layout.h"

#include <cstring>
#include <type_traits>

namespace mb {
namespace {

// GGUF value type ids (docs/formats/gguf.md, "Value types").
constexpr uint32_t kTypeU32 = 4;
constexpr uint32_t kTypeI32 = 5;
constexpr uint32_t kTypeF32 = 6;
constexpr uint32_t kTypeBool = 7;
constexpr uint32_t kTypeString = 8;
constexpr uint32_t kTypeArray = 9;

template <typename T>
void put(std::string& out, T value) {
  char raw[sizeof(T)];
  std::memcpy(raw, &value, sizeof(T));  // little-endian host assumed (x86-64)
  out.append(raw, sizeof(T));
}

void put_string(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}

}  // namespace

uint64_t GgufLayout::padded(uint64_t n) { return (n + kGgufAlignment - 1) / kGgufAlignment * kGgufAlignment; }

void GgufLayout::add_key(const std::string& key, uint32_t type) {
  put_string(kv_bytes_, key);
  put<uint32_t>(kv_bytes_, type);
  ++kv_count_;
}

void GgufLayout::add_string(const std::string& key, const std::string& value) {
  add_key(key, kTypeString);
  put_string(kv_bytes_, value);
}

void GgufLayout::add_u32(const std::string& key, uint32_t value) {
  add_key(key, kTypeU32);
  put<uint32_t>(kv_bytes_, value);
}

void GgufLayout::add_f32(const std::string& key, float value) {
  add_key(key, kTypeF32);
  put<float>(kv_bytes_, value);
}

void GgufLayout::add_bool(const std::string& key, bool value) {
  add_key(key, kTypeBool);
  put<uint8_t>(kv_bytes_, value ? 1 : 0);
}

void GgufLayout::add_i32(const std::string& key, int32_t value) {
  add_key(key, kTypeI32);
  put<int32_t>(kv_bytes_, value);
}

void GgufLayout::add_strings(const std::string& key, const std::vector<std::string>& value) {
  add_key(key, kTypeArray);
  put<uint32_t>(kv_bytes_, kTypeString);
  put<uint64_t>(kv_bytes_, value.size());
  for (const std::string& s : value) put_string(kv_bytes_, s);
}

void GgufLayout::add_i32s(const std::string& key, const std::vector<int32_t>& value) {
  add_key(key, kTypeArray);
  put<uint32_t>(kv_bytes_, kTypeI32);
  put<uint64_t>(kv_bytes_, value.size());
  for (int32_t v : value) put<int32_t>(kv_bytes_, v);
}

void GgufLayout::add_f32s(const std::string& key, const std::vector<float>& value) {
  add_key(key, kTypeArray);
  put<uint32_t>(kv_bytes_, kTypeF32);
  put<uint64_t>(kv_bytes_, value.size());
  for (float v : value) put<float>(kv_bytes_, v);
}

void GgufLayout::add_metadata(const GgufMetadata& metadata) {
  for (const GgufMetadata::Entry& e : metadata.entries()) {
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string>) add_string(e.key, v);
          if constexpr (std::is_same_v<T, uint32_t>) add_u32(e.key, v);
          if constexpr (std::is_same_v<T, int32_t>) add_i32(e.key, v);
          if constexpr (std::is_same_v<T, float>) add_f32(e.key, v);
          if constexpr (std::is_same_v<T, bool>) add_bool(e.key, v);
          if constexpr (std::is_same_v<T, std::vector<std::string>>) add_strings(e.key, v);
          if constexpr (std::is_same_v<T, std::vector<int32_t>>) add_i32s(e.key, v);
          if constexpr (std::is_same_v<T, std::vector<float>>) add_f32s(e.key, v);
        },
        e.value);
  }
}

const GgufValue* GgufMetadata::find(std::string_view key) const {
  for (const Entry& e : m_entries)
    if (e.key == key) return &e.value;
  return nullptr;
}

void GgufMetadata::set(const std::string& key, GgufValue value) {
  for (Entry& e : m_entries) {
    if (e.key == key) {
      e.value = std::move(value);
      return;
    }
  }
  m_entries.push_back({key, std::move(value)});
}

void GgufLayout::add_tensor(GgufTensorRecord record) { tensors_.push_back(std::move(record)); }

uint64_t GgufLayout::offset(size_t i) const {
  uint64_t at = 0;
  for (size_t k = 0; k < i; ++k) at += padded(tensors_[k].byte_size);
  return at;
}

std::string GgufLayout::header() const {
  std::string out = "GGUF";
  put<uint32_t>(out, 3);
  put<uint64_t>(out, tensors_.size());
  put<uint64_t>(out, kv_count_);
  out += kv_bytes_;
  uint64_t at = 0;
  for (const GgufTensorRecord& t : tensors_) {
    put_string(out, t.name);
    put<uint32_t>(out, static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) put<uint64_t>(out, d);
    put<uint32_t>(out, t.ggml_type);
    put<uint64_t>(out, at);
    at += padded(t.byte_size);
  }
  out.resize(padded(out.size()), '\0');
  return out;
}

}  // namespace mb
