#include "tensors/gguf_layout.h"

#include <cstring>

namespace mb {
namespace {

// GGUF value type ids (docs/formats/gguf.md, "Value types").
constexpr uint32_t kTypeU32 = 4;
constexpr uint32_t kTypeF32 = 6;
constexpr uint32_t kTypeBool = 7;
constexpr uint32_t kTypeString = 8;

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
