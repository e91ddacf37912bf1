#pragma once
// quantize_model / dequantize_model: whole-model conversions between a float
// model directory and an MLX-quantized one (mlx_lm.convert -q / -d).
//
// Which tensors quantize_model quantizes (mlx_lm quantizes every Linear,
// Embedding and SwitchLinear whose input dimension divides the group size;
// without the Python module types we go by name and shape): a tensor named
// "*.weight" that is 2-D, floating point, not "*norm.weight", and whose last
// dimension divides the group size. In Qwen2/Llama checkpoints that is
// exactly the Linear and Embedding weights. A tensor the rule selects but
// whose last dimension does not divide the group size stays float (as in
// MLX) and is named in a warning. Per-module overrides replace the rule:
// {bits, group_size} quantizes that module with those (an error if the
// group size does not divide its input dimension), nullopt keeps it float.
//
// Values: every tensor is read as f32 (a quantized input is dequantized
// exactly, q·s + b in f32), rounded to the target dtype — MLX casts to the
// conversion dtype before quantizing, so the quantizer sees the same values
// mlx_lm.convert would — and then quantized bit-exactly (mlx_quant.h) with
// scales and biases in that dtype. Float tensors that stay float are
// converted to the dtype too; non-float tensors are copied.
//
// Streaming and determinism as in fuse.h: one tensor at a time, rows in
// fixed chunks over all cores, identical bytes for any thread count.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/result.h"
#include "tensors/adapters.h"
#include "tensors/dtype.h"
#include "tensors/mlx_quant.h"
#include "tensors/model_dir.h"
#include "tensors/retention.h"

namespace mb {

class Reporter;

struct QuantizeOptions {
  int bits = kDefaultBits;
  int group_size = kDefaultGroupSize;
  QuantKernel kernel = QuantKernel::kGpu;
  // Scales, biases and float tensors; nullopt = the model's dtype
  // (fuse.h's default_dtype: torch_dtype for a float model).
  std::optional<DType> dtype;
  // Module path ("model.layers.0.mlp.down_proj") → its own parameters, or
  // nullopt to keep it float. Recorded in config.json's quantization.
  std::map<std::string, std::optional<LayerQuant>> overrides;
  int threads = 0;  // 0 = all cores
  uint64_t max_shard_bytes = kDefaultMaxShardBytes;
  std::string step;  // names progress events
};

// Measures retention while quantizing a fused model: W0 and ΔW are
// recomputed from the base and adapters the model was fused from.
struct RetentionReference {
  fs::path base_dir;
  std::vector<Adapter> adapters;
};

struct ConvertResult {
  DType dtype = DType::kF32;                 // float / scales dtype of the output
  int64_t tensors = 0;                       // tensors written
  int64_t quantized = 0;                     // quantized weights among them
  uint64_t bytes = 0;                        // tensor bytes written
  std::optional<RetentionReport> retention;  // with a RetentionReference
};

// The rule above, for one tensor (overrides not applied).
bool is_quantization_candidate(const std::string& name, const std::vector<int64_t>& shape, DType dtype);

// Quantizes the model at `model_dir` (float or already quantized) into
// `out_dir`, which must exist; see fuse_model for the output guarantees.
// kInvalidInput for bad bits/group size/dtype or an override that does not
// fit; errors from the reference name its files.
Result<ConvertResult> quantize_model(FileSystem& fs, const fs::path& model_dir, const fs::path& out_dir,
                                     const QuantizeOptions& options, const RetentionReference* reference,
                                     Reporter& reporter);

struct DequantizeOptions {
  std::optional<DType> dtype;  // nullopt = default_dtype (the scales' dtype)
  int threads = 0;
  uint64_t max_shard_bytes = kDefaultMaxShardBytes;
  std::string step;
  // kHuggingFace also sets torch_dtype when config.json lacks it
  // (tensors/hf_export.h is the entry point for that layout).
  DirLayout layout = DirLayout::kMlx;
};

// Every float or quantized tensor becomes a float tensor in `dtype`
// (dequantized exactly in f32, rounded once); quantization is removed from
// config.json. A float input is simply converted.
Result<ConvertResult> dequantize_model(FileSystem& fs, const fs::path& model_dir, const fs::path& out_dir,
                                       const DequantizeOptions& options, Reporter& reporter);

}  // namespace mb
