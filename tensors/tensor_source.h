#pragma once
// TensorSource: the float tensors of a model as an exporter reads them, one
// tensor and one row at a time, each value float32 rounded to the model's
// dtype. Two kinds:
//   a model directory as it is (float, or MLX-quantized and dequantized as
//     q·s + b in f32, tensors/fuse.h), rounded to default_dtype(model);
//   a base with adapters fused in (dequantize mode): W* computed by the
//     fusion's own fuse_row and rounded to the fusion's output dtype, which
//     is exactly what fuse_model would write and a reader of that float
//     model would see, without the float model ever being written.
// So an exporter fed by the fused source writes the same bytes as the same
// exporter run on fuse_model's output (docs/formats/gguf.md, "Export").
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/result.h"
#include "tensors/adapters.h"
#include "tensors/dtype.h"
#include "tensors/fuse.h"
#include "tensors/model_dir.h"

namespace mb {

class Reporter;

// One tensor of a source as float32 rows [rows, cols], rounded to dtype().
// Immutable and thread-safe; each thread uses its own Scratch.
class SourceRows {
 public:
  SourceRows(WeightRows rows, std::vector<const LoraModule*> modules, DType dtype)
      : m_rows(std::move(rows)), m_modules(std::move(modules)), m_dtype(dtype) {}

  const std::string& name() const { return m_rows.name(); }
  const std::vector<int64_t>& shape() const { return m_rows.shape(); }
  int64_t rows() const { return m_rows.rows(); }
  int64_t cols() const { return m_rows.cols(); }
  DType dtype() const { return m_dtype; }
  bool adapted() const { return !m_modules.empty(); }

  struct Scratch {
    WeightRows::Scratch weights;
    std::vector<float> base, delta;  // cols() each when adapted
  };
  Scratch make_scratch() const;
  // REQUIRES: row < rows(), out.size() == cols().
  void read_row(int64_t row, std::span<float> out, Scratch& scratch) const;

 private:
  WeightRows m_rows;
  std::vector<const LoraModule*> m_modules;
  DType m_dtype;
};

class TensorSource {
 public:
  // The model at `dir` as it is.
  static Result<std::unique_ptr<TensorSource>> open_model(const FileSystem& fs, const fs::path& dir);
  // `base_dir` with `adapters` (in order) fused in dequantize mode to
  // `dtype` (nullopt: default_dtype(base)), validated as fuse_model
  // validates them (warnings to `reporter`). `adapters` must outlive the
  // source. Errors as fuse_model's before it writes anything.
  static Result<std::unique_ptr<TensorSource>> open_fused(const FileSystem& fs, const fs::path& base_dir,
                                                          const std::vector<Adapter>& adapters,
                                                          std::optional<DType> dtype, Reporter& reporter);

  // Where the side files (tokenizer) are: the model's or the base's dir.
  const fs::path& dir() const { return m_model->dir(); }
  // config.json of the model as read (fused: as fuse_model writes it).
  const nlohmann::ordered_json& config() const { return m_config; }
  // The float dtype every value is rounded to.
  DType dtype() const { return m_dtype; }
  // The model's tensors in its order, without the scales/biases of an MLX
  // quantized triple (read through their "<m>.weight").
  const std::vector<std::string>& names() const { return m_names; }
  bool contains(const std::string& name) const { return m_model->weights().contains(name); }
  // kUnsupported for a non-float tensor, kNotFound when absent.
  Result<SourceRows> open(const std::string& name) const;

 private:
  TensorSource() = default;
  // The directory opened and its tensor names; config and dtype to fill.
  static Result<std::unique_ptr<TensorSource>> open_dir(const FileSystem& fs, const fs::path& dir);
  std::unique_ptr<ModelDir> m_model;  // owned: WeightRows borrow its mappings
  nlohmann::ordered_json m_config;
  DType m_dtype = DType::kF32;
  std::vector<std::string> m_names;
  AdaptedModules m_adapted;
};

}  // namespace mb
