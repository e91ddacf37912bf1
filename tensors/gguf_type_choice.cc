// llama.cpp's per-tensor type choice (src/llama-quant.cpp in the llama.cpp
// source), restated for the dense architectures and file types modelbuild
// writes; see tensors/gguf_type_choice.h.
#include "tensors/gguf_type_choice.h"

namespace mb {
namespace {

bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }
bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

// The first and last eighth of the layers, and every third one between.
bool use_more_bits(int layer, int n_layers) {
  return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
}

GgmlType default_type(GgufFileType file_type) {
  switch (file_type) {
    case GgufFileType::kF16:
      return GgmlType::kF16;
    case GgufFileType::kBF16:
      return GgmlType::kBF16;
    case GgufFileType::kQ8_0:
      return GgmlType::kQ8_0;
    case GgufFileType::kQ4_0:
      return GgmlType::kQ4_0;
    case GgufFileType::kQ4_K_M:
      return GgmlType::kQ4_K;
    case GgufFileType::kQ5_K_M:
      return GgmlType::kQ5_K;
    case GgufFileType::kQ6_K:
      return GgmlType::kQ6_K;
  }
  return GgmlType::kF16;
}

bool is_quantized(GgmlType type) { return type != GgmlType::kF32 && type != GgmlType::kF16 && type != GgmlType::kBF16; }

// A row the type's block does not divide: the 32-wide stand-in, else F16.
GgmlType fallback(GgmlType type, int64_t row_length) {
  if (ggml_row_fits(type, row_length)) return type;
  GgmlType smaller = type;
  if (type == GgmlType::kQ4_K) smaller = GgmlType::kQ5_0;
  if (type == GgmlType::kQ5_K) smaller = GgmlType::kQ5_1;
  if (type == GgmlType::kQ6_K) smaller = GgmlType::kQ8_0;
  return ggml_row_fits(smaller, row_length) ? smaller : GgmlType::kF16;
}

GgmlType adjusted_type(GgufFileType file_type, const GgufTensorShape& t, GgmlType type) {
  const bool medium_mix = file_type == GgufFileType::kQ4_K_M || file_type == GgufFileType::kQ5_K_M;
  const bool is_output = t.name == "output.weight" || (t.tied_embeddings && t.name == "token_embd.weight");
  if (is_output) {
    if (!ggml_row_fits(type, t.row_length)) return GgmlType::kQ8_0;
    return type == GgmlType::kQ8_0 ? type : GgmlType::kQ6_K;
  }
  if (t.name == "token_embd.weight") return type;
  if (contains(t.name, "attn_v.weight") || contains(t.name, "ffn_down")) {
    if (medium_mix && use_more_bits(t.layer, t.n_layers)) return GgmlType::kQ6_K;
    return type;
  }
  if (contains(t.name, "attn_qkv.weight")) {
    if (file_type == GgufFileType::kQ4_K_M) return GgmlType::kQ5_K;
    if (file_type == GgufFileType::kQ5_K_M) return GgmlType::kQ6_K;
  }
  return type;
}

}  // namespace

std::optional<GgufFileType> gguf_file_type_from_name(std::string_view name) {
  if (name == "F16") return GgufFileType::kF16;
  if (name == "BF16") return GgufFileType::kBF16;
  if (name == "Q8_0") return GgufFileType::kQ8_0;
  if (name == "Q4_0") return GgufFileType::kQ4_0;
  if (name == "Q4_K_M") return GgufFileType::kQ4_K_M;
  if (name == "Q5_K_M") return GgufFileType::kQ5_K_M;
  if (name == "Q6_K") return GgufFileType::kQ6_K;
  return std::nullopt;
}

uint32_t gguf_file_type_id(GgufFileType type) {
  switch (type) {
    case GgufFileType::kF16:
      return 1;
    case GgufFileType::kBF16:
      return 32;
    case GgufFileType::kQ8_0:
      return 7;
    case GgufFileType::kQ4_0:
      return 2;
    case GgufFileType::kQ4_K_M:
      return 15;
    case GgufFileType::kQ5_K_M:
      return 17;
    case GgufFileType::kQ6_K:
      return 18;
  }
  return 0;
}

GgmlType gguf_tensor_type(GgufFileType file_type, const GgufTensorShape& t) {
  if (t.n_dims < 2 || !ends_with(t.name, "weight")) return GgmlType::kF32;
  const GgmlType base = default_type(file_type);
  if (!is_quantized(base)) return base;
  return fallback(adjusted_type(file_type, t, base), t.row_length);
}

}  // namespace mb
