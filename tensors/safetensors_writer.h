#pragma once
// Safetensors writing: deterministic, streaming, thread-safe.
//
// The caller declares every tensor (name, dtype, shape) first; a
// SafetensorsLayout then fixes the header bytes and each tensor's offsets
// in the Hugging Face writer's style (docs/formats/safetensors.md §3): tensors sorted by
// dtype alignment descending, then name; compact JSON with "__metadata__"
// first (only when there is metadata) and fields dtype, shape, data_offsets;
// header padded with spaces to a multiple of 8. The same declarations in any
// order always produce the same bytes.
//
// A SafetensorsWriter writes that header into a temp file beside the target,
// accepts each tensor's bytes in any order, from any thread, whole or in
// pieces, and on finish() checks that every byte was supplied, syncs and
// renames onto the target. A writer destroyed before finish() removes its
// temp file, so a crash or error never leaves a half-written file behind
// under the final name.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/fs.h"
#include "base/result.h"
#include "tensors/dtype.h"
#include "tensors/safetensors.h"

namespace mb {

struct TensorDecl {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
};

class SafetensorsLayout {
 public:
  // kInvalidInput on an empty or duplicate name, a name "__metadata__", a
  // negative dimension or a size that overflows. `where` names the output.
  static Result<SafetensorsLayout> plan(std::vector<TensorDecl> tensors,
                                        const std::map<std::string, std::string>& metadata,
                                        std::string_view where = "");

  // The N header bytes (JSON plus padding), without the 8-byte length.
  const std::string& header() const { return m_header; }
  // 8 + N: where the data buffer starts in the file.
  uint64_t data_offset() const { return 8 + m_header.size(); }
  uint64_t file_size() const { return data_offset() + m_data_size; }
  uint64_t data_size() const { return m_data_size; }
  // In data order.
  const std::vector<TensorInfo>& tensors() const { return m_tensors; }
  const TensorInfo* find(std::string_view name) const;

 private:
  std::string m_header;
  std::vector<TensorInfo> m_tensors;
  std::map<std::string, size_t, std::less<>> m_index;  // name -> position in m_tensors
  uint64_t m_data_size = 0;
};

class SafetensorsWriter {
 public:
  // Creates the temp file and writes the 8-byte length and the header.
  static Result<std::unique_ptr<SafetensorsWriter>> create(FileSystem& fs, const fs::path& path,
                                                           SafetensorsLayout layout);
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  const SafetensorsLayout& layout() const { return m_layout; }
  const fs::path& path() const { return m_path; }

  // Writes a whole tensor. kInvalidInput for an undeclared name, a size
  // that is not the declared size, or a second write. Thread-safe.
  Status write_tensor(std::string_view name, std::span<const std::byte> bytes);
  // Writes `bytes` at byte `offset` within the tensor, for tensors produced
  // in pieces. Pieces must not overlap. Thread-safe.
  Status write_tensor_part(std::string_view name, uint64_t offset, std::span<const std::byte> bytes);
  // kInvalidInput if some tensor is incomplete; otherwise sync, close and
  // rename onto path(). The writer is unusable afterwards.
  // REQUIRES: every write_tensor* call has returned.
  Status finish();

 private:
  SafetensorsWriter(FileSystem& fs, fs::path path, fs::path tmp, SafetensorsLayout layout,
                    std::unique_ptr<WritableFile> file);

  FileSystem& m_fs;
  fs::path m_path;
  fs::path m_tmp;
  SafetensorsLayout m_layout;
  // Guards the bookkeeping below. The write_at calls themselves run outside
  // it, concurrently: they never overlap, and WritableFile is thread-safe.
  std::mutex m_mu;
  std::unique_ptr<WritableFile> m_file;
  std::vector<uint64_t> m_written;  // bytes supplied so far, per tensor (data order)
  bool m_finished = false;
  bool m_failed = false;
};

// A tensor whose bytes are already in memory.
struct TensorData {
  TensorDecl decl;
  std::span<const std::byte> bytes;
};

// The complete file image (for tests and small files).
Result<std::string> serialize_safetensors(const std::vector<TensorData>& tensors,
                                          const std::map<std::string, std::string>& metadata);
// Writes a complete file atomically.
Status write_safetensors(FileSystem& fs, const fs::path& path, const std::vector<TensorData>& tensors,
                         const std::map<std::string, std::string>& metadata);

}  // namespace mb
