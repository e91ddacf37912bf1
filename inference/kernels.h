#pragma once
// Kernels: the matrix products of the forward pass over weights used in place
// (mmapped f32/f16/bf16, MLX affine-quantized codes with per-group scales
// and biases, or ggml blocks from a GGUF file; nothing is dequantized into a
// full copy).
//
// One summation order for every float dot product ("16 lanes"; the int8
// products over affine weights have their own, in kernels_int8.cc). A row is walked in
// the kernel's *prepared order* (the natural order, except that 4-bit rows
// put the low nibbles of 8 bytes before their high nibbles, so that unpacking
// is one shift and one mask), 16 elements at a time, every "+= p * q" being
// one fused multiply-add (one rounding):
//   float weights:  t[l] += w[16k+l] * x[16k+l]
//   affine weights: per group g,  a[l] = sum over the group of q[16k+l]*x[16k+l];
//                   t[l] += scale_g * a[l];  b += bias_g * xsum_g
//   ggml blocks:    the float order over the row's values as
//                   dequantize_rows (tensors/ggml_quants.h) gives them,
//                   dequantized one 256-value chunk at a time
// then y = t[0..15] summed by a fixed tree (8, 4, 2, 1), plus b. The bias term
// uses the group sums of x (sum of w*x = scale*sum(q*x) + bias*sum(x)): the
// weight is dequantized group by group inside the dot product.
// The AVX2 and the portable implementations follow this order exactly (FMA
// instructions vs std::fma), and the single-token path (decode) and the many-token
// path (prefill) compute identical rows. So results do not depend on the
// thread count, on the instruction set, or on how a sequence was split into
// prefill and decode steps.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "inference/thread_pool.h"
#include "tensors/dtype.h"
#include "tensors/ggml_quants.h"

namespace mb::inference {

enum class FloatType : uint8_t { kF32, kF16, kBF16 };
// kGgml: rows of ggml blocks (Q8_0, Q4_K, ...; docs/formats/gguf-blocks.md).
enum class WeightFormat : uint8_t { kFloat, kAffine, kGgml };

const char* float_type_name(FloatType t);
size_t float_type_size(FloatType t);
// One conversion for the whole project (tensors/dtype.h), NaN rule included.
using mb::bf16_to_f32;
using mb::f16_to_f32;

// Element `index` of an array of type t, as f32 (exact).
inline float load_float(const std::byte* p, FloatType t, int64_t index) {
  if (t == FloatType::kF32) {
    float f;
    std::memcpy(&f, p + 4 * index, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, p + 2 * index, 2);
  return t == FloatType::kBF16 ? bf16_to_f32(h) : f16_to_f32(h);
}

// A [rows, cols] weight (rows = output features), row-major, not owned.
struct WeightMatrix {
  int64_t rows = 0;
  int64_t cols = 0;
  WeightFormat format = WeightFormat::kFloat;
  // kFloat: the element type of `data`. kAffine: the type of scales/biases.
  FloatType dtype = FloatType::kF32;
  int bits = 0;                       // kAffine: 2, 3, 4, 5, 6 or 8
  int group_size = 0;                 // kAffine: 32, 64 or 128
  const std::byte* data = nullptr;    // values, or packed codes (LSB-first bitstream per row)
  const std::byte* scales = nullptr;  // kAffine: [rows, cols / group_size]
  const std::byte* biases = nullptr;  // kAffine: [rows, cols / group_size]
  GgmlType ggml = GgmlType::kF32;     // kGgml: the block type of every row

  uint64_t row_bytes() const;
  // Bytes one product reads from this matrix (data + scales + biases).
  uint64_t total_bytes() const;
  std::string describe() const;  // "bf16", "q4 gs64", "q4_K"
};

// Y[t, r] = sum_c W[r, c] X[t, c] for t < n_tokens; X is [n_tokens, cols],
// Y is [n_tokens, rows], both row-major.
void matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);

// Several products in one parallel loop (e.g. q, k and v of one input).
struct MatmulJob {
  const WeightMatrix* w = nullptr;
  const float* x = nullptr;
  float* y = nullptr;
};
void matmul_many(std::span<const MatmulJob> jobs, int64_t n_tokens, ThreadPool& pool);

// out[c] = W[row, c], dequantized as scale*q + bias in f32 (an embedding lookup).
void gather_row(const WeightMatrix& w, int64_t row, float* out);

// The 16-lane dot product of two float vectors (attention scores).
float dot_f32(const float* a, const float* b, int64_t n);

// Which implementation runs: "avx512", "avx2" or "portable" (the widest the
// CPU has; $MODELBUILD_KERNELS picks another, for side-by-side benchmarks).
// All give identical bits. The force_* functions are for tests: an empty
// name restores the default; false when this CPU lacks `name`.
const char* kernel_isa();
std::vector<std::string> available_kernel_isas();
bool force_kernel_isa(std::string_view name);
void force_portable_kernels(bool on);

// How affine-quantized weights meet the activations: "f32" (the default:
// the float products above, exact up to float rounding) or "int8"
// (activations quantized per weight group and integer dot products, as
// llama.cpp computes; kernels_int8.cc). $MODELBUILD_ACTIVATIONS=int8 picks
// the latter for a whole process; it is not yet the default because a
// process runs gates and fidelity steps side by side, and fidelity must
// measure the weights with exact activations (issue 16's note).
// force_activations is for tests ("" restores the default, false for an
// unknown name).
const char* activations();
bool force_activations(std::string_view name);

}  // namespace mb::inference
