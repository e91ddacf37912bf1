#pragma once
// export_hf: a model directory (float, or MLX-quantized: dequantized first)
// -> the Hugging Face transformers layout, as save_pretrained writes it
// (docs/formats/hf-layout.md): float safetensors tagged {"format":"pt"}
// under transformers' tensor names, shards of at most 5 GB (decimal, as
// transformers counts) with model.safetensors.index.json when there is more
// than one, config.json without MLX's quantization fields and with
// torch_dtype, and generation_config.json and the tokenizer files carried
// over.
//
// The conversion is dequantize_model's (tensors/quantize_model.h) with the
// Hugging Face layout of the shared directory writer (tensors/model_dir.h),
// so values are exactly those of `modelbuild`'s float conversion: every
// float or quantized weight read in f32 and rounded once to the dtype.
// Deterministic, streaming, any thread count gives the same bytes.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/fs.h"
#include "base/result.h"
#include "tensors/dtype.h"

namespace mb {

class Reporter;

// transformers' default max_shard_size, "5GB" = 5·10⁹ bytes.
inline constexpr uint64_t kHfMaxShardBytes = 5'000'000'000;

struct HfExportOptions {
  std::optional<DType> dtype;  // nullopt: the model's own (fuse.h's default_dtype)
  int threads = 0;             // 0 = all cores
  uint64_t max_shard_bytes = kHfMaxShardBytes;
  std::string step;  // names progress events
};

struct HfExportStats {
  DType dtype = DType::kF32;
  int64_t tensors = 0;
  int shards = 0;
  uint64_t bytes = 0;  // tensor bytes, all shards
};

// The architectures (config.json model_type) whose mlx_lm tensor names are
// transformers' own (mlx_lm's sanitize only drops rotary buffers and a tied
// lm_head, as save_pretrained does), and whether `name` is one of them:
// hf_tensor_name returns the transformers name, nullopt for a tensor that
// has none (so the export stops rather than writing a name transformers
// would ignore).
bool hf_architecture_supported(std::string_view model_type);
std::optional<std::string> hf_tensor_name(std::string_view model_type, std::string_view mlx_name);

// Writes the layout into `out_dir`, which must exist (a step's staging
// directory). kUnsupported naming config.json for an architecture outside
// hf_architecture_supported, or naming the tensor that has no transformers
// name; the rest as dequantize_model.
Result<HfExportStats> export_hf(FileSystem& fs, const fs::path& model_dir, const fs::path& out_dir,
                                const HfExportOptions& options, Reporter& reporter);

}  // namespace mb
