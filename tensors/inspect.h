#pragma once
// inspect and diff: what is in a model or adapter directory, and how two
// models differ, tensor by tensor.
//
// inspect(path) reads headers only (plus an adapter's factors, which are
// small): every stored tensor with dtype and shape, quantized weights with
// their bits, group size and logical [out, in], the parameter count (a
// quantized weight counts its unpacked elements, as mlx_lm's
// total_parameters does; scales and biases count as overhead, not
// parameters), the bytes on disk, and bits per weight. The quantization
// summary spells out the seeds' rule of thumb for every group of tensors:
//   size ≈ parameters × bits / 8,  with bits = b + 2·(scale bits)/group_size
// for MLX affine quantization (4-bit, gs 64, bf16 scales: 4 + 32/64 = 4.5).
//
// diff(a, b) compares two models on dequantized f32 values (so a float
// model and its quantized version can be compared): which tensors differ,
// max |Δ|, relative error ‖Δ‖/‖a‖, tensors only on one side, and logical
// shape mismatches, with how each side stores the tensor. Either side may be
// a model directory or a GGUF file (or a directory holding one), read under
// Hugging Face names (tensors/diff_source.h), so a GGUF export diffs
// against the MLX or float model it came from. Non-float tensors are
// compared byte for byte.
// It streams one tensor at a time over `threads` threads; the figures do
// not depend on the thread count.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/result.h"
#include "tensors/dtype.h"
#include "tensors/model_dir.h"

namespace mb {

enum class InspectKind { kModel, kAdapter, kGguf };

struct TensorSummary {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;          // as stored
  std::optional<LayerQuant> quant;     // a quantized weight
  std::vector<int64_t> logical_shape;  // dequantized shape (== shape when float)
  bool quant_overhead = false;         // the scales/biases of a quantized weight
  uint64_t parameters = 0;             // 0 for scales/biases
  uint64_t bytes = 0;                  // stored bytes
  std::string ggml_type;               // GGUF files: "q4_K", ... (dtype is then unused)
};

// One line of the size breakdown: tensors stored the same way.
struct SizeGroup {
  std::string label;    // "4-bit gs64 (BF16 scales)", "BF16", "U32"
  int64_t tensors = 0;  // weights (a quantized triple counts once)
  uint64_t parameters = 0;
  uint64_t bytes = 0;       // including scales and biases
  double nominal_bits = 0;  // b + 2·scale_bits/gs, or the dtype's bits
};

struct AdapterSummary {
  std::string format;  // "MLX" or "PEFT"
  bool dora = false;
  int64_t modules = 0;
  std::vector<int64_t> ranks;  // distinct, ascending
  std::vector<float> scales;   // distinct, ascending
};

struct Inspection {
  InspectKind kind = InspectKind::kModel;
  fs::path path;
  std::vector<TensorSummary> tensors;  // sorted by name
  std::vector<SizeGroup> groups;       // sorted by label
  uint64_t parameters = 0;
  uint64_t tensor_bytes = 0;       // sum of stored tensor bytes
  uint64_t safetensors_bytes = 0;  // the .safetensors files (headers included)
  uint64_t disk_bytes = 0;         // every regular file in the directory
  std::optional<AdapterSummary> adapter;
  // GGUF files: the metadata, with arrays longer than 8 shortened to a count.
  nlohmann::json gguf_metadata;

  double bits_per_weight() const {
    return parameters == 0 ? 0.0 : static_cast<double>(tensor_bytes) * 8.0 / static_cast<double>(parameters);
  }
  nlohmann::json to_json() const;
};

// A model directory (config.json + safetensors) or an adapter directory
// (adapter_config.json + adapters.safetensors / adapter_model.safetensors).
Result<Inspection> inspect(const FileSystem& fs, const fs::path& path);
// One .gguf file (tensors/gguf_inspect.cc): tensors with their ggml types
// and shapes (torch order), bits per weight per type, metadata, file size.
Result<Inspection> inspect_gguf(const FileSystem& fs, const fs::path& file);
// Human-readable summary; with `list_tensors`, one line per tensor.
std::string render_inspection(const Inspection& inspection, bool list_tensors);

enum class DiffKind { kIdentical, kDifferent, kOnlyInA, kOnlyInB, kShapeMismatch };
const char* diff_kind_name(DiffKind kind);

struct TensorDiff {
  std::string name;
  DiffKind kind = DiffKind::kIdentical;
  std::vector<int64_t> shape_a, shape_b;  // logical
  std::string stored_a, stored_b;         // "BF16", "4-bit gs64", "q4_K"; empty when absent
  bool compared_values = false;           // false: non-float, compared as bytes
  int64_t differing = 0;                  // elements whose values differ
  double max_abs = 0;                     // max |b − a|
  double rel = 0;                         // ‖b − a‖ / ‖a‖ (0 when both are 0)
};

struct ModelDiff {
  std::vector<TensorDiff> tensors;  // sorted by name
  int64_t identical = 0, different = 0, only_a = 0, only_b = 0, shape_mismatch = 0;
  bool same() const { return different == 0 && only_a == 0 && only_b == 0 && shape_mismatch == 0; }
  nlohmann::json to_json() const;
};

Result<ModelDiff> diff_models(const FileSystem& fs, const fs::path& a, const fs::path& b, int threads = 0);
// With `all`, identical tensors are listed too.
std::string render_diff(const ModelDiff& diff, bool all);

}  // namespace mb
