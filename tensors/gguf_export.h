#pragma once
// export_gguf: one model directory (float, or MLX-quantized and dequantized
// on the fly) becomes one GGUF v3 file (docs/formats/gguf.md, "Export").
//
// Every weight is read as float32, rounded to the model's dtype (what a
// float export of the model holds, so a quantized GGUF equals llama.cpp's
// quantizer run on the F16 GGUF), permuted where llama.cpp expects it,
// and encoded as the per-tensor type llama.cpp's quantizer would choose
// (tensors/gguf_type_choice.h). Tensors stream one at a time, each split into
// row chunks over all cores, so memory holds one encoded tensor and the
// chunks in flight, never the model. The bytes are identical for any thread
// count. Through GgufWriter, nothing partial is ever at `out_file`.
#include <cstdint>
#include <map>
#include <string>

#include "base/fs.h"
#include "base/result.h"
#include "tensors/gguf_type_choice.h"

namespace mb {

class TensorSource;

struct GgufExportOptions {
  GgufFileType file_type = GgufFileType::kF16;
  int threads = 0;   // 0 = all cores
  std::string name;  // general.name; "" = config.json's architectures[0] class
};

struct GgufExportStats {
  uint64_t bytes = 0;                           // size of the written file
  std::map<std::string, int> tensors_per_type;  // ggml type name ("q8_0") -> tensors
};

// Reads a model directory (float, or MLX-quantized: dequantized first) and
// writes one .gguf file. Weights are quantized from their values as rounded
// to the model's dtype. kUnsupported for an architecture without a GGUF
// mapping or a tensor with no GGUF name (naming it); tokenizer errors as in
// gguf_metadata.h.
Result<GgufExportStats> export_gguf(const fs::path& model_dir, const fs::path& out_file,
                                    const GgufExportOptions& options);
Result<GgufExportStats> export_gguf(FileSystem& fs, const fs::path& model_dir, const fs::path& out_file,
                                    const GgufExportOptions& options);
// The same from any tensor source (tensors/tensor_source.h). With a fused
// source (base + adapters) this is the one-pass export: fuse, round to the
// fusion's dtype and encode per tensor, no float model written, and the
// bytes equal export_gguf() of the model fuse_model would have written.
// Tokenizer files are read from source.dir().
Result<GgufExportStats> export_gguf(FileSystem& fs, const TensorSource& source, const fs::path& out_file,
                                    const GgufExportOptions& options);

}  // namespace mb
