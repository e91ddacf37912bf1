#pragma once
// Internal to kernels*.cc: the per-row primitives behind matmul(), in two
// implementations with the same summation order (see kernels.h): portable C++
// AVX2 and AVX-512 (x86-64 only, chosen at run time).
//
// Decode primitives read packed codes in place for 1 or 2 rows and one token.
// Tile primitives take one row already unpacked to float codes (in prepared
// order) and run it against many tokens, so unpacking is paid once per row.
// Decode reads scales and biases in their stored type; tiles take them as
// float arrays converted once per row by the caller.
#include <cstddef>
#include <cstdint>

#include "inference/kernels.h"

namespace mb::inference::detail {

struct AffineRow {
  const uint8_t* codes = nullptr;     // packed 4-bit (decode_q4) or one byte per code
  const std::byte* scales = nullptr;  // this row's groups, of type `dtype`
  const std::byte* biases = nullptr;
  FloatType dtype = FloatType::kBF16;
  float scale(int64_t g) const { return load_float(scales, dtype, g); }
  float bias(int64_t g) const { return load_float(biases, dtype, g); }
};

// One token's activations quantized to int8, one step per weight group, for
// the integer products over affine weights (kernels_int8.cc defines the
// quantization, the order and the arithmetic that every ISA reproduces).
struct Int8X {
  const int8_t* q = nullptr;       // cols values, in the int8 order of the weight's bits
  const float* d = nullptr;        // per group: the step, max |x| / 127
  const int32_t* lanes = nullptr;  // per group, 8 lanes: 128 * sum of q over the lane (byte codes)
  const float* xsum = nullptr;     // per group: the exact float sum of x
};

struct Kernels {
  // y[i] for rows[i], i < n_rows (1 or 2). xp: prepared x; xsum: group sums.
  void (*decode_q4)(const AffineRow* rows, int n_rows, int64_t cols, int gs, const float* xp, const float* xsum,
                    float* y);
  void (*decode_q8)(const AffineRow* rows, int n_rows, int64_t cols, int gs, const float* xp, const float* xsum,
                    float* y);
  // Float rows of type `t` (1 or 2 rows).
  void (*decode_float)(const std::byte* const* rows, int n_rows, FloatType t, int64_t cols, const float* x, float* y);
  // One unpacked affine row (codes as floats) against n_tok tokens.
  void (*tile_affine)(const float* qf, const float* scales, const float* biases, int64_t cols, int gs, const float* xp,
                      int64_t xp_stride, const float* xsum, int64_t xsum_stride, int64_t n_tok, float* y,
                      int64_t y_stride);
  // One f32 row against n_tok tokens.
  void (*tile_float)(const float* w, int64_t cols, const float* x, int64_t x_stride, int64_t n_tok, float* y,
                     int64_t y_stride);
  float (*dot)(const float* a, const float* b, int64_t n);
  // Codes of one row as floats in prepared order: 4-bit (n codes from n/2
  // bytes) and 8-bit.
  void (*unpack_q4)(const uint8_t* p, int64_t n, float* out);
  void (*unpack_q8)(const uint8_t* p, int64_t n, float* out);
  // t[l] += w[16k+l] * x[16k+l] over n values (n % 16 == 0): the float order
  // one chunk at a time, for rows dequantized piecewise (ggml blocks).
  void (*accumulate)(float* t, const float* w, const float* x, int64_t n);
  // Integer products: rows[i] (n_rows <= 2) against tokens x[k] (n_tok <= 4),
  // y[k * y_stride + i]. q4: packed 4-bit codes; q8: one byte per code
  // (8-bit rows, or 2/3/5/6-bit rows unpacked).
  void (*int8_q4)(const AffineRow* rows, int n_rows, int64_t cols, int gs, const Int8X* x, int n_tok, float* y,
                  int64_t y_stride);
  void (*int8_q8)(const AffineRow* rows, int n_rows, int64_t cols, int gs, const Int8X* x, int n_tok, float* y,
                  int64_t y_stride);
};

const Kernels& portable_kernels();
// The portable integer kernels (kernels_int8.cc), the definition the SIMD
// ones reproduce.
void portable_int8_q4(const AffineRow* rows, int n_rows, int64_t cols, int gs, const Int8X* x, int n_tok, float* y,
                      int64_t y_stride);
void portable_int8_q8(const AffineRow* rows, int n_rows, int64_t cols, int gs, const Int8X* x, int n_tok, float* y,
                      int64_t y_stride);
// Quantizes one token's x (cols values, groups of gs) into q, d, lanes and
// xsum (arrays of cols, cols/gs, 8*cols/gs and cols/gs), in the int8 order
// for `bits` (4: each 32 values as the 16 even then the 16 odd ones).
void quantize_int8(const float* x, int64_t cols, int gs, int bits, int8_t* q, float* d, int32_t* lanes, float* xsum);
// nullptr when the CPU (or the build target) has no AVX2/F16C.
const Kernels* avx2_kernels();
// nullptr without AVX-512F/BW/VL (or without what avx2_kernels needs).
const Kernels* avx512_kernels();

// ggml rows (kernels_ggml.cc). decode: y[r - r0] for rows [r0, r1), one
// token, each row dequantized a chunk at a time into a thread-local buffer.
void ggml_decode_rows(const Kernels& k, const WeightMatrix& w, const float* x, int64_t r0, int64_t r1, float* y);
// Row `row` of a kGgml matrix as f32 (dequantize_rows).
void ggml_dequantize_row(const WeightMatrix& w, int64_t row, float* out);

// The fixed reduction tree of 8 lanes (the tail of reduce16).
inline float reduce8(const float* t) {
  float u[4];
  for (int l = 0; l < 4; ++l) u[l] = t[l] + t[l + 4];
  float w0 = u[0] + u[2], w1 = u[1] + u[3];
  return w0 + w1;
}

// The fixed reduction tree of 16 lanes.
inline float reduce16(const float* t) {
  float v[8], u[4];
  for (int l = 0; l < 8; ++l) v[l] = t[l] + t[l + 8];
  for (int l = 0; l < 4; ++l) u[l] = v[l] + v[l + 4];
  float w0 = u[0] + u[2], w1 = u[1] + u[3];
  return w0 + w1;
}

}  // namespace mb::inference::detail
