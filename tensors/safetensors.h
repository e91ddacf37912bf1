#pragma once
// Safetensors reading: a strict validator for untrusted headers and a
// read-only, memory-mapped view of one file.
//
// Layout (docs/formats/safetensors.md): 8-byte little-endian header length N, N
// bytes of UTF-8 JSON, then the data buffer. Files from the Hugging Face
// writer (padded header, data sorted by dtype then name) and from the MLX
// writer (no padding, "__metadata__":null, data in arbitrary order) are both
// accepted. Every violation is an Errc::kCorrupt error whose `where` is the
// file and whose message names the offending tensor.
//
// A SafetensorsFile owns its mapping; the spans it hands out stay valid as
// long as the SafetensorsFile (moving it keeps them valid). It is immutable
// after open(), so any number of threads may read it.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/fs.h"
#include "base/result.h"
#include "tensors/dtype.h"

namespace mb {

// Largest header the reference reader accepts (its MAX_HEADER_SIZE).
inline constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  // Byte range within the data buffer (not the file); end is exclusive.
  uint64_t data_begin = 0;
  uint64_t data_end = 0;

  uint64_t nbytes() const { return data_end - data_begin; }
  // Product of the shape (1 for a scalar). Validated headers never overflow.
  uint64_t numel() const;
};

// A tensor's description and its bytes. `info` is null when a lookup failed.
struct TensorRef {
  const TensorInfo* info = nullptr;
  std::span<const std::byte> bytes;
  explicit operator bool() const { return info != nullptr; }
};

// What a header says, after validation against the file length.
struct SafetensorsHeader {
  uint64_t header_size = 0;  // N, padding included
  // Sorted by name (names are unique).
  std::vector<TensorInfo> tensors;
  // Empty when "__metadata__" is absent or null.
  std::map<std::string, std::string> metadata;
  bool has_metadata = false;  // "__metadata__" present and not null

  uint64_t data_offset() const { return 8 + header_size; }
};

// Parses and validates the header of a complete file image `file`. `where`
// names the file in errors. Safe on arbitrary bytes (the fuzzing entry point).
Result<SafetensorsHeader> parse_safetensors_header(std::span<const std::byte> file, std::string_view where);

// Bytes a tensor of this dtype and shape occupies; kCorrupt on a negative
// dimension, on overflow, or when numel*bits is not a whole number of bytes.
// `where` and `name` go into the error.
Result<uint64_t> tensor_nbytes(DType dtype, std::span<const int64_t> shape, std::string_view where,
                               std::string_view name);

class SafetensorsFile {
 public:
  // Maps `path` and validates its header.
  static Result<SafetensorsFile> open(const FileSystem& fs, const fs::path& path);
  // Validates a mapping someone already holds; `where` names it in errors.
  static Result<SafetensorsFile> from_mapping(std::unique_ptr<ReadOnlyMapping> mapping, std::string where);

  const std::string& where() const { return m_where; }
  // Sorted by name.
  const std::vector<TensorInfo>& tensors() const { return m_header.tensors; }
  const TensorInfo* find(std::string_view name) const;
  // REQUIRES: `info` came from this file.
  std::span<const std::byte> data(const TensorInfo& info) const;
  TensorRef get(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return m_header.metadata; }
  const SafetensorsHeader& header() const { return m_header; }
  // The whole file image.
  std::span<const std::byte> file_bytes() const { return m_mapping->bytes(); }

 private:
  SafetensorsFile(std::unique_ptr<ReadOnlyMapping> mapping, std::string where, SafetensorsHeader header)
      : m_mapping(std::move(mapping)), m_where(std::move(where)), m_header(std::move(header)) {}

  std::unique_ptr<ReadOnlyMapping> m_mapping;
  std::string m_where;
  SafetensorsHeader m_header;
};

// Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool is_valid_utf8(std::string_view text);

// A ReadOnlyMapping over bytes held in memory, for parsing buffers in tests
// and fuzzers through the same SafetensorsFile API.
std::unique_ptr<ReadOnlyMapping> make_memory_mapping(std::string bytes);

}  // namespace mb
