#pragma once
// The hot loops of the tensor steps (quantize, dequantize, LoRA delta, f16
// conversion, retention sums), each in implementations that give the same
// bits for every input: portable C++ (kernels.cc), which is the reference,
// AVX2+F16C (kernels_avx2.cc), chosen at run time when the CPU has both, and
// NEON (kernels_neon.cc) on aarch64. "Same bits" is what lets a release
// rebuilt on another machine reproduce its bytes, so the vector code does
// exactly the portable code's IEEE operations per element, in the same
// order, with no FMA, and only reorders what cannot change a result
// (min/max, independent lanes). kernels_test.cc checks each vector table
// against the portable one on random and edge-case inputs (NaN, ±inf, ±0,
// subnormals, ties, all-negative groups).
//
// Callers use the concept-level functions (quantize_rows, to_f32,
// RetentionSums::add, fuse_row, ...), which call table().
#include <cstddef>
#include <cstdint>

#include "tensors/dtype.h"
#include "tensors/mlx_quant.h"

namespace mb::kernels {

struct Table {
  // MLX affine quantization of `groups` consecutive groups of `gs` values
  // (mlx_quant.h's quantize_group, whose `dtype` is the input dtype): one
  // code per byte in `codes`, and each group's float32 scale and bias before
  // rounding to the stored dtype. REQUIRES: gs % 8 == 0.
  void (*quantize_groups)(const float* w, int64_t groups, int gs, int bits, QuantKernel kernel, DType dtype,
                          uint8_t* codes, float* scales, float* biases);
  // out[i] = float(q[i]) * scales[g] + biases[g] in float32 (one multiply,
  // one add), g = i / gs, over groups × gs values whose codes q are packed
  // `bits` wide (mlx_quant.h's LSB-first bitstream). REQUIRES: gs % 32 == 0.
  void (*dequantize_packed)(const std::byte* packed, int bits, int64_t groups, int gs, const float* scales,
                            const float* biases, float* out);
  // delta[i] = Σ_k coef[k] · a[k·n + i] for k = 0..rank-1 ascending, starting
  // from 0.0f: the LoRA delta of one output row (coef = scale · B[row, :]).
  void (*lora_delta)(const float* coef, const float* a, int64_t rank, int64_t n, float* delta);
  // IEEE binary16 conversions, round to nearest even (dtype.h's scalar
  // f32_to_f16 / f16_to_f32, NaN payloads included). The f16 side is raw
  // little-endian bytes with no alignment requirement.
  void (*f16_to_f32)(const void* in, float* out, int64_t n);
  void (*f32_to_f16)(const float* in, void* out, int64_t n);
  // out[i] = f16_to_f32(f32_to_f16(in[i])); in may equal out.
  void (*round_f16)(const float* in, float* out, int64_t n);
  // The retention sums of RetentionSums::add: element i goes to lane i % 4;
  // lanes[q][l] accumulates quantity q (ΔW², error², change², dot) in double.
  void (*retention_lanes)(const float* w0, const float* target, const float* result, int64_t n, double lanes[4][4]);
};

// The implementation in use: AVX2 when the CPU supports it, NEON on aarch64.
// Tests compare portable_table() with each of the others directly.
const Table& table();
// "avx2", "neon" or "portable": what table() returns (benchmarks print it).
const char* isa();

const Table& portable_table();
// nullptr when the CPU or the build target lacks AVX2 and F16C. The AVX2
// kernels finish the elements that do not fill a register with the portable
// ones.
const Table* avx2_table();
// nullptr except on aarch64, where NEON is always present (kernels_neon.cc).
const Table* neon_table();

}  // namespace mb::kernels
