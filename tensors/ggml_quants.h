#pragma once
// GGUF block quantization (ggml's block types), bit-exact with llama.cpp's
// reference quantizers (no importance matrix). Layouts, byte offsets and
// worked examples: docs/formats/gguf-blocks.md.
//
// A row of `cols` floats becomes cols / block_size blocks, each
// ggml_type_size bytes, written one row after another. The enumerators carry
// ggml's numeric type ids, which is what a GGUF tensor-info record stores.
// All functions are pure; callers may quantize disjoint row ranges on
// several threads.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace mb {

enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kBF16 = 30,
};

// ggml's spelling: "f32", "q4_0", "q4_K", ...
const char* ggml_type_name(GgmlType type);
// nullopt for an id this module does not implement.
std::optional<GgmlType> ggml_type_from_id(uint32_t id);
// Values per block: 1 for F32/F16/BF16, 32 for Q*_0/Q*_1, 256 for Q*_K.
int64_t ggml_block_size(GgmlType type);
// Bytes per block.
size_t ggml_type_size(GgmlType type);
// Bytes of one row of `cols` values. REQUIRES: cols % ggml_block_size == 0.
size_t ggml_row_size(GgmlType type, int64_t cols);
// Whether a row of `cols` values can be stored as `type`.
bool ggml_row_fits(GgmlType type, int64_t cols);
// Whether quantize_rows/dequantize_rows handle `type` (every enumerator that
// ggml_type_from_id returns, eventually; see the .cc).
bool ggml_type_implemented(GgmlType type);

// Quantizes `rows` rows of `cols` floats into ggml_row_size * rows bytes.
// REQUIRES: ggml_row_fits(type, cols) and ggml_type_implemented(type).
std::vector<uint8_t> quantize_rows(GgmlType type, const float* src, int64_t rows, int64_t cols);
// The same into caller-owned storage of ggml_row_size(type, cols) * rows bytes.
void quantize_rows_into(GgmlType type, const float* src, int64_t rows, int64_t cols, uint8_t* dst);
// Inverse: `rows` rows of `cols` values from `src` into `dst` (rows * cols).
void dequantize_rows(GgmlType type, const uint8_t* src, int64_t rows, int64_t cols, float* dst);

}  // namespace mb
