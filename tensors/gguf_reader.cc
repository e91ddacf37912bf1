#include "tensors/gguf_reader.h"

#include <fmt/ranges.h>

#include <cstring>
#include <limits>

#include "tensors/safetensors.h"

// Validation rules: docs/formats/gguf.md, "What the reader rejects".
namespace mb {
namespace {

// GGUF value type ids (docs/formats/gguf.md, "Value types").
enum : uint32_t {
  kU8 = 0,
  kI8,
  kU16,
  kI16,
  kU32,
  kI32,
  kF32,
  kBool,
  kString,
  kArray,
  kU64,
  kI64,
  kF64,
};
constexpr uint32_t kGgufVersion = 3;
constexpr uint64_t kMaxDims = 4;
constexpr size_t kMaxNameBytes = 63;  // llama.cpp's GGML_MAX_NAME is 64 with the terminator

size_t scalar_size(uint32_t type) {
  switch (type) {
    case kU8:
    case kI8:
    case kBool:
      return 1;
    case kU16:
    case kI16:
      return 2;
    case kU32:
    case kI32:
    case kF32:
      return 4;
    case kU64:
    case kI64:
    case kF64:
      return 8;
    default:
      return 0;
  }
}

}  // namespace

// Reads the header of a mapping front to back; every read is bounds-checked.
class GgufParser {
 public:
  GgufParser(std::span<const std::byte> bytes, std::string where) : m_bytes(bytes), m_where(std::move(where)) {}

  Status parse(GgufFile& out);

 private:
  Error fail(const std::string& message) const { return Error{Errc::kCorrupt, m_where, message}; }
  uint64_t remaining() const { return m_bytes.size() - m_at; }

  template <typename T>
  bool read(T& v) {
    if (remaining() < sizeof(T)) return false;
    std::memcpy(&v, m_bytes.data() + m_at, sizeof(T));  // little-endian host (x86-64, aarch64)
    m_at += sizeof(T);
    return true;
  }
  template <typename T, typename As = T>
  bool scalar(nlohmann::ordered_json& v) {
    T x{};
    if (!read(x)) return false;
    v = static_cast<As>(x);
    return true;
  }
  // A string: u64 length then that many bytes, which must be valid UTF-8.
  Status read_string(std::string& s, const std::string& what);
  Status read_value(uint32_t type, nlohmann::ordered_json& v, const std::string& key);
  Status read_array(nlohmann::ordered_json& v, const std::string& key);
  Status read_scalar(uint32_t type, nlohmann::ordered_json& v, const std::string& key);
  Status read_metadata(GgufFile& out, uint64_t count);
  Status read_tensor_info(GgufFile& out, GgufTensorInfo& t, size_t index);
  Status place_tensors(GgufFile& out);

  std::span<const std::byte> m_bytes;
  std::string m_where;
  uint64_t m_at = 0;
};

Status GgufParser::read_string(std::string& s, const std::string& what) {
  uint64_t n = 0;
  if (!read(n)) return fail(fmt::format("{}: truncated string length", what));
  if (n > remaining())
    return fail(fmt::format("{}: string length {} exceeds the {} bytes left in the file", what, n, remaining()));
  s.assign(reinterpret_cast<const char*>(m_bytes.data() + m_at), n);
  m_at += n;
  if (!is_valid_utf8(s)) return fail(fmt::format("{}: string is not valid UTF-8", what));
  return {};
}

Status GgufParser::read_scalar(uint32_t type, nlohmann::ordered_json& v, const std::string& key) {
  bool ok = true;
  switch (type) {
    case kU8:
      ok = scalar<uint8_t>(v);
      break;
    case kI8:
      ok = scalar<int8_t>(v);
      break;
    case kU16:
      ok = scalar<uint16_t>(v);
      break;
    case kI16:
      ok = scalar<int16_t>(v);
      break;
    case kU32:
      ok = scalar<uint32_t>(v);
      break;
    case kI32:
      ok = scalar<int32_t>(v);
      break;
    case kU64:
      ok = scalar<uint64_t>(v);
      break;
    case kI64:
      ok = scalar<int64_t>(v);
      break;
    case kF32:
      ok = scalar<float, double>(v);
      break;
    case kF64:
      ok = scalar<double>(v);
      break;
    case kBool: {
      uint8_t x = 0;
      ok = read(x);
      if (ok && x > 1) return fail(fmt::format("key {}: bool value {} is neither 0 nor 1", key, x));
      v = x == 1;
      break;
    }
    default:
      return fail(fmt::format("key {}: unknown value type {}", key, type));
  }
  if (!ok) return fail(fmt::format("key {}: truncated value", key));
  return {};
}

Status GgufParser::read_array(nlohmann::ordered_json& v, const std::string& key) {
  uint32_t elem = 0;
  uint64_t count = 0;
  if (!read(elem) || !read(count)) return fail(fmt::format("key {}: truncated array header", key));
  if (elem == kArray) return fail(fmt::format("key {}: nested arrays are not allowed", key));
  size_t min_size = elem == kString ? sizeof(uint64_t) : scalar_size(elem);
  if (min_size == 0) return fail(fmt::format("key {}: unknown array element type {}", key, elem));
  if (count > remaining() / min_size)
    return fail(fmt::format("key {}: array of {} elements cannot fit in the {} bytes left", key, count, remaining()));
  v = nlohmann::ordered_json::array();
  for (uint64_t i = 0; i < count; ++i) {
    nlohmann::ordered_json e;
    if (elem == kString) {
      std::string s;
      if (Status st = read_string(s, fmt::format("key {}[{}]", key, i)); !st) return st;
      e = std::move(s);
    } else if (Status st = read_scalar(elem, e, key); !st) {
      return st;
    }
    v.push_back(std::move(e));
  }
  return {};
}

Status GgufParser::read_value(uint32_t type, nlohmann::ordered_json& v, const std::string& key) {
  if (type == kString) {
    std::string s;
    if (Status st = read_string(s, "key " + key); !st) return st;
    v = std::move(s);
    return {};
  }
  if (type == kArray) return read_array(v, key);
  return read_scalar(type, v, key);
}

Status GgufParser::read_metadata(GgufFile& out, uint64_t count) {
  for (uint64_t i = 0; i < count; ++i) {
    std::string key;
    if (Status st = read_string(key, fmt::format("metadata entry {}", i)); !st) return st;
    if (key.empty()) return fail(fmt::format("metadata entry {}: empty key", i));
    if (out.m_metadata.contains(key)) return fail(fmt::format("key {}: duplicate key", key));
    uint32_t type = 0;
    if (!read(type)) return fail(fmt::format("key {}: truncated value type", key));
    nlohmann::ordered_json value;
    if (Status st = read_value(type, value, key); !st) return st;
    out.m_metadata[key] = std::move(value);
    out.m_metadata_types[key] = static_cast<int>(type);
  }
  auto it = out.m_metadata_types.find("general.alignment");
  if (it != out.m_metadata_types.end()) {
    if (it->second != kU32) return fail("key general.alignment: must be a UINT32");
    uint64_t a = out.m_metadata["general.alignment"].get<uint64_t>();
    if (a == 0 || (a & (a - 1)) != 0) return fail(fmt::format("key general.alignment: {} is not a power of two", a));
    out.m_alignment = a;
  }
  return {};
}

Status GgufParser::read_tensor_info(GgufFile& out, GgufTensorInfo& t, size_t index) {
  if (Status st = read_string(t.name, fmt::format("tensor record {}", index)); !st) return st;
  const std::string what = "tensor " + t.name;
  if (t.name.empty() || t.name.size() > kMaxNameBytes)
    return fail(
        fmt::format("tensor record {}: name of {} bytes (1 to {} allowed)", index, t.name.size(), kMaxNameBytes));
  if (out.m_index.count(t.name)) return fail(what + ": duplicate tensor name");
  uint32_t n_dims = 0;
  if (!read(n_dims)) return fail(what + ": truncated dimension count");
  if (n_dims < 1 || n_dims > kMaxDims) return fail(fmt::format("{}: {} dimensions (1 to 4 allowed)", what, n_dims));
  uint64_t numel = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    uint64_t n = 0;
    if (!read(n)) return fail(what + ": truncated dimensions");
    if (n == 0 || n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / numel)
      return fail(fmt::format("{}: dimension {} = {} is zero or overflows", what, d, n));
    numel *= n;
    t.dims.push_back(n);
  }
  uint32_t type_id = 0;
  if (!read(type_id) || !read(t.offset)) return fail(what + ": truncated type or offset");
  std::optional<GgmlType> type = ggml_type_from_id(type_id);
  if (!type) return fail(fmt::format("{}: unknown ggml type {}", what, type_id));
  t.type = *type;
  if (!ggml_row_fits(t.type, static_cast<int64_t>(t.dims[0])))
    return fail(fmt::format("{}: row length {} is not a multiple of {}'s block of {}", what, t.dims[0],
                            ggml_type_name(t.type), ggml_block_size(t.type)));
  // Bounded before multiplying so that neither product can overflow.
  if (t.dims[0] / static_cast<uint64_t>(ggml_block_size(t.type)) > m_bytes.size())
    return fail(fmt::format("{}: a row of {} values cannot fit in the file", what, t.dims[0]));
  uint64_t row_bytes = ggml_row_size(t.type, static_cast<int64_t>(t.dims[0]));
  uint64_t rows = numel / t.dims[0];
  if (rows > m_bytes.size() / row_bytes)
    return fail(
        fmt::format("{}: {} rows of {} bytes cannot fit in a file of {} bytes", what, rows, row_bytes, m_bytes.size()));
  t.byte_size = rows * row_bytes;
  return {};
}

// Offsets are relative in the file; they must be the running padded sum and
// every tensor must end inside the file. Afterwards they are absolute.
Status GgufParser::place_tensors(GgufFile& out) {
  uint64_t a = out.m_alignment;
  if (m_at > std::numeric_limits<uint64_t>::max() - a) return fail("header size overflows");
  out.m_data_offset = (m_at + a - 1) / a * a;
  uint64_t expected = 0;
  for (GgufTensorInfo& t : out.m_tensors) {
    if (t.offset != expected)
      return fail(fmt::format("tensor {}: offset {} in the data section, expected {}", t.name, t.offset, expected));
    uint64_t size = m_bytes.size();
    if (out.m_data_offset > size || t.byte_size > size - out.m_data_offset ||
        t.offset > size - out.m_data_offset - t.byte_size)
      return fail(fmt::format("tensor {}: data [{}, {}) reaches past the end of the file ({} bytes)", t.name,
                              out.m_data_offset + t.offset, out.m_data_offset + t.offset + t.byte_size, size));
    t.offset += out.m_data_offset;
    expected += (t.byte_size + a - 1) / a * a;
  }
  return {};
}

Status GgufParser::parse(GgufFile& out) {
  char magic[4];
  uint64_t n_tensors = 0, n_kv = 0;
  if (!read(magic) || std::memcmp(magic, "GGUF", 4) != 0) return fail("not a GGUF file (bad magic)");
  if (!read(out.m_version)) return fail("truncated header");
  if (out.m_version != kGgufVersion) return fail(fmt::format("GGUF version {} (only 3 is supported)", out.m_version));
  if (!read(n_tensors) || !read(n_kv)) return fail("truncated header");
  // A metadata entry takes at least 13 bytes, a tensor record at least 29.
  if (n_kv > remaining() / 13) return fail(fmt::format("metadata count {} cannot fit in the file", n_kv));
  if (n_tensors > remaining() / 29) return fail(fmt::format("tensor count {} cannot fit in the file", n_tensors));
  if (Status st = read_metadata(out, n_kv); !st) return st;
  out.m_tensors.resize(n_tensors);
  for (size_t i = 0; i < n_tensors; ++i) {
    if (Status st = read_tensor_info(out, out.m_tensors[i], i); !st) return st;
    out.m_index[out.m_tensors[i].name] = i;
  }
  return place_tensors(out);
}

uint64_t GgufTensorInfo::numel() const {
  uint64_t n = 1;
  for (uint64_t d : dims) n *= d;
  return n;
}

Result<GgufFile> GgufFile::from_mapping(std::unique_ptr<ReadOnlyMapping> mapping, std::string where) {
  GgufFile file;
  file.m_path = where;
  GgufParser parser(mapping->bytes(), std::move(where));
  file.m_mapping = std::move(mapping);
  if (Status st = parser.parse(file); !st) return st.error();
  return file;
}

Result<GgufFile> GgufFile::open(const FileSystem& fs, const fs::path& path) {
  Result<std::unique_ptr<ReadOnlyMapping>> mapping = fs.map_file(path);
  if (!mapping) return mapping.error();
  return from_mapping(std::move(mapping.value()), path.string());
}

Result<GgufFile> GgufFile::open(const fs::path& path) {
  std::unique_ptr<FileSystem> fs = make_real_file_system();
  return open(*fs, path);
}

int GgufFile::metadata_type(std::string_view key) const {
  auto it = m_metadata_types.find(std::string(key));
  return it == m_metadata_types.end() ? -1 : it->second;
}

const GgufTensorInfo* GgufFile::find(std::string_view name) const {
  auto it = m_index.find(std::string(name));
  return it == m_index.end() ? nullptr : &m_tensors[it->second];
}

std::span<const uint8_t> GgufFile::bytes(const GgufTensorInfo& t) const {
  return {reinterpret_cast<const uint8_t*>(m_mapping->bytes().data()) + t.offset, t.byte_size};
}

Result<std::optional<fs::path>> find_gguf_model(const FileSystem& fs, const fs::path& path) {
  // A path naming a .gguf file stands for it even when it is missing, so
  // that the reader's "not found" names the file the user gave.
  if (path.extension() == ".gguf") return std::optional<fs::path>(path);
  Result<FileStat> st = fs.stat(path);
  if (!st.ok() || st->is_regular) return std::optional<fs::path>();
  if (!st->is_dir) return std::optional<fs::path>();
  MB_ASSIGN(std::vector<std::string> names, fs.list_dir(path));
  std::vector<std::string> ggufs;
  bool has_config = false;
  for (const std::string& n : names) {
    if (n == "config.json") has_config = true;
    if (fs::path(n).extension() == ".gguf") ggufs.push_back(n);
  }
  if (has_config || ggufs.empty()) return std::optional<fs::path>();
  if (ggufs.size() > 1)
    return make_error(Errc::kInvalidInput, path.string(), "holds {} .gguf files ({}); name one of them", ggufs.size(),
                      fmt::join(ggufs, ", "));
  return std::optional<fs::path>(path / ggufs[0]);
}

Result<std::string> gguf_architecture(const GgufFile& file) {
  const auto it = file.metadata().find("general.architecture");
  if (it == file.metadata().end() || !it->is_string())
    return make_error(Errc::kCorrupt, file.path().string(), "general.architecture is missing or not a string");
  return it->get<std::string>();
}

Result<std::pair<int, int>> gguf_head_counts(const GgufFile& file, const std::string& arch) {
  const auto get = [&](const std::string& key) -> Result<int> {
    const auto it = file.metadata().find(key);
    if (it == file.metadata().end() || !it->is_number_integer() || it->get<int64_t>() <= 0 ||
        it->get<int64_t>() > std::numeric_limits<int>::max())
      return make_error(Errc::kCorrupt, file.path().string(), "metadata key {} is missing or not a positive integer",
                        key);
    return it->get<int>();
  };
  MB_ASSIGN(int heads, get(arch + ".attention.head_count"));
  MB_ASSIGN(int kv_heads, get(arch + ".attention.head_count_kv"));
  return std::make_pair(heads, kv_heads);
}

}  // namespace mb
