#pragma once
// GgufWriter: a streaming, deterministic GGUF v3 writer (docs/formats/gguf.md).
//
// All metadata and tensor records are given up front, so every tensor's
// offset is known before any data exists. create() writes the header to a
// temp file beside `path`; tensors then arrive from any thread in any order
// and are written (quantized here, padded with zeros) at their precomputed
// offsets; finish() checks that every tensor arrived, fsyncs and renames the
// file into place. Nothing partial is ever at `path`: a writer destroyed
// before finish() removes its temp file. Equal inputs give equal bytes.
//
// write_tensor / write_raw are thread-safe (distinct tensors touch disjoint
// byte ranges); create / finish are not, and finish must follow every write.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/fs.h"
#include "base/result.h"
#include "tensors/ggml_quants.h"
#include "tensors/gguf_layout.h"

namespace mb {

struct GgufTensorDecl {
  std::string name;
  std::vector<uint64_t> dims;  // innermost first
  GgmlType type = GgmlType::kF32;
};

class GgufWriter {
 public:
  // kInvalidInput for a duplicate or over-long name, a bad shape, a row
  // length the type's block does not divide, or duplicate metadata keys.
  // general.alignment (u32 32) is appended when `metadata` lacks it.
  static Result<std::unique_ptr<GgufWriter>> create(const fs::path& path, const GgufMetadata& metadata,
                                                    std::vector<GgufTensorDecl> tensors);
  static Result<std::unique_ptr<GgufWriter>> create(FileSystem& fs, const fs::path& path, const GgufMetadata& metadata,
                                                    std::vector<GgufTensorDecl> tensors);
  ~GgufWriter();
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  // Thread-safe. `values` holds the tensor's float values (rows *
  // row_length), quantized here to the declared type. kInvalidInput for an
  // unknown name, a wrong count or a tensor written twice.
  Status write_tensor(std::string_view name, std::span<const float> values);
  // Thread-safe. Already encoded bytes, exactly the tensor's byte size.
  Status write_raw(std::string_view name, std::span<const uint8_t> bytes);
  Status finish();

  // Bytes of the finished file.
  uint64_t file_size() const { return m_file_size; }
  const std::vector<GgufTensorDecl>& tensors() const { return m_decls; }
  // Bytes tensor `name` takes (unpadded); 0 when unknown.
  uint64_t tensor_bytes(std::string_view name) const;

 private:
  struct Slot {
    uint64_t offset = 0;  // from the start of the file
    uint64_t byte_size = 0;
    std::atomic<bool> written{false};
  };
  GgufWriter() = default;
  Result<Slot*> claim(std::string_view name, uint64_t byte_size);
  Status write_slot(Slot& slot, std::string_view name, const uint8_t* data);

  std::unique_ptr<FileSystem> m_owned_fs;
  FileSystem* m_fs = nullptr;
  fs::path m_path;
  fs::path m_temp;
  std::unique_ptr<WritableFile> m_file;
  std::vector<GgufTensorDecl> m_decls;
  std::unique_ptr<Slot[]> m_slots;
  std::unordered_map<std::string, size_t> m_index;
  uint64_t m_file_size = 0;
  bool m_finished = false;
};

}  // namespace mb
