#pragma once
// Retention of a GGUF file: how much of the adapters' weight change the
// quantized (or F16/BF16) weights of a written .gguf kept, read back from
// the file's own bytes (tensors/retention.h gives the formula and the
// report; docs/formats/gguf.md the names and the llama q/k row order).
//
// For each weight the adapters touch: W0 from `base_dir`, W* = W0 + ΔW from
// the adapters in order (the same fuse_row the fusion uses), Ŵ the GGUF
// tensor of that weight's GGUF name, dequantized row by row with the
// reference dequantizer; for llama's q/k projections the GGUF row that holds
// each Hugging Face row is read, so rows line up. The sums are per row
// chunk in row order, so the figures are the same for any thread count.
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/result.h"
#include "tensors/retention.h"

namespace mb {

// kInvalidInput naming the file and tensor for an adapted weight the file
// lacks or holds with another shape; kCorrupt/kUnsupported from the reader.
// `what` and `bits` fill the report's fields (e.g. "GGUF Q4_K_M export", 4;
// 0 for F16/BF16), which choose the verdict's advice.
Result<RetentionReport> measure_gguf_retention(const FileSystem& fs, const fs::path& gguf_file,
                                               const fs::path& base_dir, const std::vector<Adapter>& adapters,
                                               const std::string& what, int bits, int threads, Reporter& reporter);

}  // namespace mb
