#pragma once
// GgufFile: a validating, memory-mapped reader of GGUF v3 files
// (docs/formats/gguf.md, "What the reader rejects").
//
// Every count, string length, array length, dimension, offset and tensor
// size is checked against the bytes that remain before anything is
// allocated or read, so arbitrary (hostile, truncated) bytes give an
// Errc::kCorrupt error whose `where` is the file and whose message names the
// key or tensor. Tensor offsets must be the running sum of the padded sizes,
// the placement llama.cpp itself requires.
//
// A GgufFile owns its mapping; the spans it hands out stay valid as long as
// the GgufFile (moving it keeps them valid). It is immutable after open(), so
// any number of threads may read it.
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/fs.h"
#include "base/result.h"
#include "tensors/ggml_quants.h"

namespace mb {

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> dims;  // innermost first, as stored
  GgmlType type = GgmlType::kF32;
  uint64_t offset = 0;  // from the start of the FILE (data section start + relative offset)
  uint64_t byte_size = 0;

  // Product of the dims (validated files never overflow).
  uint64_t numel() const;
  uint64_t row_length() const { return dims.empty() ? 0 : dims[0]; }
  uint64_t rows() const { return row_length() == 0 ? 0 : numel() / row_length(); }
};

class GgufFile {
 public:
  static Result<GgufFile> open(const fs::path& path);
  static Result<GgufFile> open(const FileSystem& fs, const fs::path& path);
  // Validates a mapping someone already holds (tests, the fuzzer); `where`
  // names it in errors.
  static Result<GgufFile> from_mapping(std::unique_ptr<ReadOnlyMapping> mapping, std::string where);

  uint32_t version() const { return m_version; }
  // Every metadata value as JSON: ints/floats/bools/strings, arrays as JSON
  // arrays. Key order kept.
  const nlohmann::ordered_json& metadata() const { return m_metadata; }
  // The GGUF value type id of a key's value (arrays: 9), or -1 when absent.
  int metadata_type(std::string_view key) const;
  const std::vector<GgufTensorInfo>& tensors() const { return m_tensors; }
  const GgufTensorInfo* find(std::string_view name) const;
  // REQUIRES: `t` came from this file.
  std::span<const uint8_t> bytes(const GgufTensorInfo& t) const;
  const fs::path& path() const { return m_path; }
  uint64_t alignment() const { return m_alignment; }
  uint64_t data_offset() const { return m_data_offset; }
  uint64_t file_size() const { return m_mapping->bytes().size(); }
  // Hint that a tensor's pages will not be read again soon (streaming).
  void done_with(const GgufTensorInfo& t) const { m_mapping->done_with(t.offset, t.byte_size); }

 private:
  GgufFile() = default;
  friend class GgufParser;

  std::unique_ptr<ReadOnlyMapping> m_mapping;
  fs::path m_path;
  uint32_t m_version = 0;
  uint64_t m_alignment = 32;
  uint64_t m_data_offset = 0;
  nlohmann::ordered_json m_metadata = nlohmann::ordered_json::object();
  std::unordered_map<std::string, int> m_metadata_types;
  std::vector<GgufTensorInfo> m_tensors;
  std::unordered_map<std::string, size_t> m_index;
};

// The GGUF file `path` stands for: `path` itself when it ends in .gguf
// (existing or not: opening it then says what is wrong), or the one .gguf
// file of a directory without config.json (what a GGUF target
// materializes). nullopt for anything else (a safetensors model directory,
// a missing path); an error for a directory holding several.
Result<std::optional<fs::path>> find_gguf_model(const FileSystem& fs, const fs::path& path);

// general.architecture ("qwen2", ...); kCorrupt naming the file when absent.
Result<std::string> gguf_architecture(const GgufFile& file);
// ARCH.attention.head_count and head_count_kv, which llama's q/k row
// permutation needs; kCorrupt naming the key when absent or not positive.
Result<std::pair<int, int>> gguf_head_counts(const GgufFile& file, const std::string& arch);

}  // namespace mb
