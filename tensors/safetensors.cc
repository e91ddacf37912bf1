#include "tensors/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

namespace mb {

namespace {

using nlohmann::json;

// Deeper than any valid header (object > entry > shape array); anything
// beyond is dropped during parsing so a hostile header cannot build a
// deeply nested DOM.
constexpr int kMaxDepth = 8;

bool is_json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
// Returns the offset of the first bad byte, or npos.
size_t find_invalid_utf8(std::string_view s) {
  size_t i = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;
    }
    if (n - i < len) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
      return i;
    i += len;
  }
  return std::string_view::npos;
}

// nlohmann keeps the last of duplicate keys silently; this callback tracks
// the keys of every open object and records the first duplicate.
struct DuplicateFinder {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  bool too_deep = false;

  bool operator()(int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        if (depth >= kMaxDepth) {
          too_deep = true;
          return false;
        }
        open_objects.emplace_back();
        break;
      case json::parse_event_t::array_start:
        if (depth >= kMaxDepth) {
          too_deep = true;
          return false;
        }
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() && parsed.is_string()) {
          const auto& key = parsed.get_ref<const std::string&>();
          if (!open_objects.back().insert(key).second && duplicate.empty()) duplicate = key;
        }
        break;
      default:
        break;
    }
    return true;
  }
};

bool as_u64(const json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(v.get<int64_t>());
    return true;
  }
  return false;
}

Result<TensorInfo> parse_entry(const std::string& name, const json& entry, std::string_view where) {
  auto bad = [&](std::string_view what) {
    return make_error(Errc::kCorrupt, std::string(where), "tensor '{}': {}", name, what);
  };
  if (!entry.is_object()) return bad("entry is not a JSON object");
  TensorInfo info;
  info.name = name;

  auto dt = entry.find("dtype");
  if (dt == entry.end() || !dt->is_string()) return bad("missing or non-string \"dtype\"");
  auto dtype = dtype_from_name(dt->get_ref<const std::string&>());
  if (!dtype) return bad(fmt::format("unknown dtype '{}'", dt->get_ref<const std::string&>()));
  info.dtype = *dtype;

  auto sh = entry.find("shape");
  if (sh == entry.end() || !sh->is_array()) return bad("missing or non-array \"shape\"");
  for (const json& d : *sh) {
    uint64_t v;
    if (!as_u64(d, &v) || v > static_cast<uint64_t>(INT64_MAX))
      return bad("shape entries must be non-negative integers");
    info.shape.push_back(static_cast<int64_t>(v));
  }

  auto off = entry.find("data_offsets");
  if (off == entry.end() || !off->is_array() || off->size() != 2)
    return bad("\"data_offsets\" must be an array of two integers");
  if (!as_u64((*off)[0], &info.data_begin) || !as_u64((*off)[1], &info.data_end))
    return bad("\"data_offsets\" must be non-negative integers");
  if (info.data_end < info.data_begin)
    return bad(fmt::format("data_offsets [{}, {}] end before they begin", info.data_begin, info.data_end));

  MB_ASSIGN(uint64_t nbytes, tensor_nbytes(info.dtype, info.shape, where, name));
  if (nbytes != info.nbytes())
    return bad(fmt::format("{} {} needs {} bytes but data_offsets [{}, {}] span {}", dtype_name(info.dtype),
                           json(info.shape).dump(), nbytes, info.data_begin, info.data_end, info.nbytes()));
  return info;
}

class MemoryMapping : public ReadOnlyMapping {
 public:
  explicit MemoryMapping(std::string bytes) : m_bytes(std::move(bytes)) {}
  std::span<const std::byte> bytes() const override { return as_bytes(m_bytes); }

 private:
  std::string m_bytes;
};

}  // namespace

uint64_t TensorInfo::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

Result<uint64_t> tensor_nbytes(DType dtype, std::span<const int64_t> shape, std::string_view where,
                               std::string_view name) {
  uint64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0) return make_error(Errc::kCorrupt, std::string(where), "tensor '{}': negative dimension {}", name, d);
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel))
      return make_error(Errc::kCorrupt, std::string(where), "tensor '{}': element count overflows", name);
  }
  uint64_t bits;
  if (__builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_bits(dtype)), &bits))
    return make_error(Errc::kCorrupt, std::string(where), "tensor '{}': byte size overflows", name);
  if (bits % 8 != 0)
    return make_error(Errc::kCorrupt, std::string(where),
                      "tensor '{}': {} elements of {} are not a whole number of bytes", name, numel, dtype_name(dtype));
  return bits / 8;
}

Result<SafetensorsHeader> parse_safetensors_header(std::span<const std::byte> file, std::string_view where) {
  std::string w(where);
  if (file.size() < 8)
    return make_error(Errc::kCorrupt, w, "file is {} bytes, shorter than the 8-byte header length", file.size());
  uint64_t n = 0;
  std::memcpy(&n, file.data(), 8);  // little-endian host (static_assert in dtype.cc)
  if (n > kMaxSafetensorsHeader)
    return make_error(Errc::kCorrupt, w, "header length {} exceeds the {} byte limit", n, kMaxSafetensorsHeader);
  if (n > file.size() - 8)
    return make_error(Errc::kCorrupt, w, "header length {} exceeds the {} bytes after the length field", n,
                      file.size() - 8);

  std::string_view text = as_chars(file.subspan(8, n));
  if (size_t bad = find_invalid_utf8(text); bad != std::string_view::npos)
    return make_error(Errc::kCorrupt, w, "header is not valid UTF-8 (byte {})", bad);
  size_t first = 0;
  while (first < text.size() && is_json_space(text[first])) ++first;
  if (first == text.size() || text[first] != '{') return make_error(Errc::kCorrupt, w, "header is not a JSON object");

  DuplicateFinder finder;
  json root;
  try {
    root = json::parse(text.begin(), text.end(), std::ref(finder), /*allow_exceptions=*/true);
  } catch (const json::exception& e) {
    return make_error(Errc::kCorrupt, w, "header is not valid JSON: {}", e.what());
  }
  if (finder.too_deep) return make_error(Errc::kCorrupt, w, "header JSON is nested too deeply");
  if (!finder.duplicate.empty()) return make_error(Errc::kCorrupt, w, "duplicate key '{}' in header", finder.duplicate);
  if (!root.is_object()) return make_error(Errc::kCorrupt, w, "header is not a JSON object");

  SafetensorsHeader header;
  header.header_size = n;
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (it->is_null()) continue;
      if (!it->is_object()) return make_error(Errc::kCorrupt, w, "\"__metadata__\" must be null or an object");
      header.has_metadata = true;
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string())
          return make_error(Errc::kCorrupt, w, "\"__metadata__\" value for '{}' is not a string", m.key());
        header.metadata.emplace(m.key(), m->get<std::string>());
      }
      continue;
    }
    MB_ASSIGN(TensorInfo info, parse_entry(it.key(), *it, where));
    header.tensors.push_back(std::move(info));
  }
  // json objects iterate in key order, so tensors are already sorted by name.

  // Coverage: sorted by offsets, each tensor starts where the previous one
  // ended, and together they fill the data buffer exactly.
  std::vector<const TensorInfo*> by_offset;
  by_offset.reserve(header.tensors.size());
  for (const TensorInfo& t : header.tensors) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return std::tie(a->data_begin, a->data_end, a->name) < std::tie(b->data_begin, b->data_end, b->name);
  });
  // A tensor that points past the end of the file is named first: otherwise
  // the gap it leaves would be blamed on whichever tensor follows it.
  const uint64_t buffer = file.size() - 8 - n;
  for (const TensorInfo* t : by_offset)
    if (t->data_end > buffer)
      return make_error(Errc::kCorrupt, w,
                        "tensor '{}': data [{}, {}) lies past the end of the file (its data buffer holds {} bytes)",
                        t->name, t->data_begin, t->data_end, buffer);
  uint64_t expected = 0;
  for (const TensorInfo* t : by_offset) {
    if (t->data_begin != expected) {
      if (t->data_begin > expected)
        return make_error(Errc::kCorrupt, w, "tensor '{}': data starts at {}, leaving a hole after byte {}", t->name,
                          t->data_begin, expected);
      return make_error(Errc::kCorrupt, w, "tensor '{}': data [{}, {}) overlaps the previous tensor (ends at {})",
                        t->name, t->data_begin, t->data_end, expected);
    }
    expected = t->data_end;
  }
  if (expected != buffer)  // only short of it: nothing ends past the buffer (checked above)
    return make_error(Errc::kCorrupt, w, "tensors cover {} bytes but the data buffer holds {}", expected, buffer);
  return header;
}

Result<SafetensorsFile> SafetensorsFile::open(const FileSystem& fs, const fs::path& path) {
  MB_ASSIGN(auto mapping, fs.map_file(path));
  return from_mapping(std::move(mapping), path.string());
}

Result<SafetensorsFile> SafetensorsFile::from_mapping(std::unique_ptr<ReadOnlyMapping> mapping, std::string where) {
  MB_ASSIGN(SafetensorsHeader header, parse_safetensors_header(mapping->bytes(), where));
  return SafetensorsFile(std::move(mapping), std::move(where), std::move(header));
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  const auto& ts = m_header.tensors;
  auto it = std::lower_bound(ts.begin(), ts.end(), name,
                             [](const TensorInfo& t, std::string_view n) { return std::string_view(t.name) < n; });
  if (it == ts.end() || it->name != name) return nullptr;
  return &*it;
}

std::span<const std::byte> SafetensorsFile::data(const TensorInfo& info) const {
  return m_mapping->bytes().subspan(m_header.data_offset() + info.data_begin, info.nbytes());
}

TensorRef SafetensorsFile::get(std::string_view name) const {
  const TensorInfo* info = find(name);
  if (!info) return {};
  return {info, data(*info)};
}

bool is_valid_utf8(std::string_view text) { return find_invalid_utf8(text) == std::string_view::npos; }

std::unique_ptr<ReadOnlyMapping> make_memory_mapping(std::string bytes) {
  return std::make_unique<MemoryMapping>(std::move(bytes));
}

}  // namespace mb
