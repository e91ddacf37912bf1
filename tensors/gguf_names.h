#pragma once
// Hugging Face / mlx_lm tensor names -> GGUF tensor names for the dense
// architectures modelbuild exports (qwen2, llama, qwen3), and the rotary row
// permutation llama.cpp expects for llama's q/k projections
// (docs/formats/gguf.md, "Tensor names"). Pure functions.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace mb {

// Whether modelbuild has a GGUF mapping for `arch` ("qwen2", "llama", "qwen3").
bool gguf_arch_supported(std::string_view arch);

// "model.layers.3.self_attn.q_proj.weight" -> "blk.3.attn_q.weight"; nullopt
// for a name the architecture has no GGUF tensor for (which export refuses).
std::optional<std::string> gguf_tensor_name(std::string_view arch, std::string_view hf_name);

// The inverse, for reading a GGUF file under Hugging Face names:
// "blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight";
// nullopt for a name gguf_tensor_name never produces for `arch`
// (rope_freqs.weight, say).
std::optional<std::string> gguf_source_name(std::string_view arch, std::string_view gguf_name);

// The number of heads whose rows are permuted when this HF tensor goes into
// a GGUF file of `arch`: n_head for llama's q_proj (weight and bias),
// n_kv_head for its k_proj; nullopt for every other tensor (qwen2 and qwen3
// use the rotate-half pairing llama.cpp calls NEOX, so nothing moves).
std::optional<int> gguf_permuted_heads(std::string_view arch, std::string_view hf_name, int n_head, int n_kv_head);

// The HF row that GGUF row `gguf_row` holds, for heads of `head_dim` rows:
// within each head the rows go 0, D/2, 1, D/2+1, ... REQUIRES: head_dim even.
int64_t gguf_rope_source_row(int64_t gguf_row, int64_t head_dim);
// The inverse: the GGUF row that holds HF row `hf_row` (for loading).
int64_t gguf_rope_target_row(int64_t hf_row, int64_t head_dim);

// Whole-buffer forms for rows x cols values (a 1-D bias is rows x 1).
// REQUIRES: rows % n_heads == 0, (rows / n_heads) even.
void permute_rows_for_gguf(std::span<const float> hf, int64_t rows, int64_t cols, int n_heads, std::span<float> gguf);
void unpermute_rows_from_gguf(std::span<const float> gguf, int64_t rows, int64_t cols, int n_heads,
                              std::span<float> hf);

}  // namespace mb
