#pragma once
// The ggml type llama.cpp's quantizer (llama_model_quantize, no imatrix, no
// overrides) gives each tensor of a GGUF file type, for the dense
// architectures modelbuild exports (qwen2, llama, qwen3): output (and tied
// token embeddings) Q6_K, attn_v / ffn_down Q6_K on the "more bits" layers
// of Q4_K_M and Q5_K_M, 1-D tensors unquantized, and the fallbacks for rows
// a block does not divide. docs/formats/gguf-blocks.md lists the types.
#include <cstdint>
#include <optional>
#include <string_view>

#include "tensors/ggml_quants.h"

namespace mb {

enum class GgufFileType { kF16, kBF16, kQ8_0, kQ4_0, kQ4_K_M, kQ5_K_M, kQ6_K };

// "F16", "Q4_K_M", ... as recipes spell them; nullopt for anything else.
std::optional<GgufFileType> gguf_file_type_from_name(std::string_view name);
// llama.cpp's general.file_type value (LLAMA_FTYPE_*).
uint32_t gguf_file_type_id(GgufFileType type);

struct GgufTensorShape {
  std::string_view name;         // GGUF name, e.g. "blk.3.attn_v.weight"
  int64_t row_length = 0;        // ne[0], the innermost dimension
  int n_dims = 2;                // 1 for norms and biases
  int layer = -1;                // blk index, -1 outside the blocks
  int n_layers = 0;              // the model's block count
  bool tied_embeddings = false;  // no output.weight: token_embd is the output
};

// REQUIRES: 1-D tensors and non-".weight" tensors are kept as F32 by the
// caller's source; they return kF32 here.
GgmlType gguf_tensor_type(GgufFileType file_type, const GgufTensorShape& tensor);

}  // namespace mb
