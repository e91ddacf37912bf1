#pragma once
// One side of `modelbuild diff` (tensors/inspect.h): a model directory
// (config.json + safetensors, float or MLX-quantized) or a GGUF file, seen
// the same way, as logical tensors under Hugging Face names whose rows read
// back as f32. So a GGUF export can be compared with the float or MLX model
// it came from, tensor by tensor.
//
// A GGUF file's names are mapped back with gguf_source_name and llama's q/k
// rows are read in Hugging Face order (docs/formats/gguf.md, "Tensor
// names"); blocks are dequantized with the reference dequantizer
// (docs/formats/gguf-blocks.md). A GGUF tensor with no Hugging Face name
// (rope_freqs.weight, or any tensor of an architecture without a mapping)
// keeps its GGUF name. Reading a row is const and thread-safe given a
// Scratch per thread.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/result.h"
#include "tensors/fuse.h"
#include "tensors/gguf_reader.h"
#include "tensors/model_dir.h"

namespace mb {

// One logical tensor of a DiffSource.
class DiffTensor {
 public:
  const std::vector<int64_t>& shape() const { return m_shape; }  // logical, torch order
  int64_t rows() const { return m_rows; }
  int64_t cols() const { return m_cols; }
  // How it is stored: "BF16", "4-bit gs64", "q6_K", "U32".
  const std::string& stored() const { return m_stored; }
  // False for a non-float safetensors tensor: compare bytes() instead.
  bool has_values() const { return m_mlx.has_value() || m_gguf != nullptr; }
  std::span<const std::byte> bytes() const { return m_bytes; }

  struct Scratch {
    WeightRows::Scratch weights;
    std::vector<float> row;
  };
  Scratch make_scratch() const;
  // REQUIRES: has_values(), row < rows(), out.size() == cols().
  void read_row(int64_t row, std::span<float> out, Scratch& scratch) const;

 private:
  friend class DiffSource;
  std::vector<int64_t> m_shape;
  int64_t m_rows = 0, m_cols = 0;
  std::string m_stored;
  std::span<const std::byte> m_bytes;
  std::optional<WeightRows> m_mlx;
  const GgufTensorInfo* m_gguf = nullptr;
  size_t m_row_bytes = 0;
  int64_t m_head_dim = 0;  // > 0: llama's permuted q/k rows
};

class DiffSource {
 public:
  // A .gguf file, a directory holding one (a GGUF target's output), or a
  // model directory. Errors name the path.
  static Result<DiffSource> open(const FileSystem& fs, const fs::path& path);

  const std::vector<std::string>& names() const { return m_names; }  // sorted, unique
  // REQUIRES: `name` is in names(). The DiffTensor borrows from this source.
  Result<DiffTensor> tensor(const std::string& name) const;

 private:
  Result<DiffTensor> gguf_tensor(const std::string& name) const;
  Result<DiffTensor> dir_tensor(const std::string& name) const;

  std::vector<std::string> m_names;
  std::shared_ptr<const ModelDir> m_dir;
  std::shared_ptr<const GgufFile> m_gguf;
  std::string m_arch;
  std::pair<int, int> m_heads{0, 0};
  std::vector<std::pair<std::string, const GgufTensorInfo*>> m_gguf_names;  // sorted by the first
};

}  // namespace mb
