#include "inference/safetensors_view.h"

#include <cstring>

#include <nlohmann/json.hpp>

#include "inference/kernels.h"

namespace mb::inference {

Status SafetensorsView::add_file(const FileSystem& fs, const fs::path& path) {
  MB_ASSIGN(auto mapping, fs.map_file(path));
  const auto bytes = mapping->bytes();
  const std::string where = path.string();
  if (bytes.size() < 8) return Error{Errc::kCorrupt, where, "file shorter than a safetensors header"};
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  if (n > 100'000'000 || n > bytes.size() - 8) return Error{Errc::kCorrupt, where, "bad safetensors header length"};
  auto h = nlohmann::json::parse(as_chars(bytes.subspan(8, n)), nullptr, false);
  if (h.is_discarded() || !h.is_object()) return Error{Errc::kCorrupt, where, "safetensors header is not a JSON object"};
  const auto data = bytes.subspan(8 + n);
  for (auto& [name, v] : h.items()) {
    if (name == "__metadata__") continue;
    const Error bad{Errc::kCorrupt, where + ": " + name, "malformed safetensors entry"};
    if (!v.is_object()) return bad;
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string() || sh == v.end() || !sh->is_array() || off == v.end() ||
        !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() || !(*off)[1].is_number_unsigned())
      return bad;
    TensorData t;
    t.dtype = dt->get<std::string>();
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned()) return bad;
      t.shape.push_back(d.get<int64_t>());
    }
    const uint64_t b = (*off)[0].get<uint64_t>(), e = (*off)[1].get<uint64_t>();
    if (b > e || e > data.size()) return Error{Errc::kCorrupt, where + ": " + name, "data_offsets outside the file"};
    t.bytes = data.subspan(b, e - b);
    m_tensors[name] = std::move(t);
    m_location[name] = where;
  }
  m_mappings.push_back(std::move(mapping));
  return Status();
}

const TensorData* SafetensorsView::find(const std::string& name) const {
  auto it = m_tensors.find(name);
  return it == m_tensors.end() ? nullptr : &it->second;
}

std::string SafetensorsView::location(const std::string& name) const {
  auto it = m_location.find(name);
  return it == m_location.end() ? std::string() : it->second;
}

Result<std::vector<float>> tensor_to_f32(const TensorData& t, const std::string& name) {
  FloatType ft;
  if (t.dtype == "F32") ft = FloatType::kF32;
  else if (t.dtype == "F16") ft = FloatType::kF16;
  else if (t.dtype == "BF16") ft = FloatType::kBF16;
  else return Error{Errc::kUnsupported, name, "unsupported dtype " + t.dtype};
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  if (static_cast<uint64_t>(n) * float_type_size(ft) != t.bytes.size())
    return Error{Errc::kCorrupt, name, "byte size does not match shape and dtype"};
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = load_float(t.bytes.data(), ft, i);
  return v;
}

}  // namespace mb::inference
