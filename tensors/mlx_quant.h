#pragma once
// MLX affine quantization, bit-exact (docs/formats/mlx-quantization.md).
//
// Each group of `group_size` consecutive values along the last axis gets one
// scale and one bias, stored in the input dtype (F32, F16 or BF16), and
// `bits`-bit codes packed as one LSB-first bitstream per row into uint32
// words. Two quantizers exist in MLX and both are reproduced:
//   - kCpu: true min/max, rint (ties to even), clamp to [0, 2^bits-1];
//   - kGpu: max starts at 0, round (ties away from zero), clamp at the top
//     only. mlx_lm.convert on a Mac runs this one.
// All arithmetic is float32 in MLX's order; codes come from the unrounded
// float32 scale and bias, which are rounded (RNE) to the dtype only when
// stored. Dequantization is MLX's CPU formula T(T(q*s) + b).
//
// Everything here works on caller-provided spans and allocates nothing
// except the whole-tensor helpers at the end, so callers parallelize by
// handing disjoint row ranges to different threads. Float inputs are
// float32 values that must already be exact values of the dtype (as
// to_f32() of the tensor bytes gives).
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "tensors/dtype.h"

namespace mb {

enum class QuantKernel { kCpu, kGpu };
const char* quant_kernel_name(QuantKernel kernel);

struct QuantParams {
  int bits = 4;
  int group_size = 64;
  QuantKernel kernel = QuantKernel::kGpu;
};

// kInvalidInput unless bits is 2,3,4,5,6,8 and group_size 32,64,128.
// `where` (a tensor or module name) goes into the error.
Status check_quant_params(int bits, int group_size, std::string_view where);

// Validates quantizing a tensor: a quantizable float dtype, rank >= 1 (MLX
// wants >= 2; a 1-D tensor is accepted as a single row), last dimension
// divisible by group_size. Errors name the tensor.
Status check_quantizable(std::string_view name, DType dtype, std::span<const int64_t> shape, const QuantParams& params);

// Shapes of the packed weight (U32) and of scales/biases for a float tensor
// of `shape`; REQUIRES: check_quantizable passed.
std::vector<int64_t> packed_shape(std::span<const int64_t> shape, int bits);
std::vector<int64_t> scales_shape(std::span<const int64_t> shape, int group_size);

// The float shape a packed weight dequantizes to: last dim packed*32/bits.
// Checks that the scales/biases shapes agree (scales last dim ==
// in/group_size, same leading dims). Errors name `name`.
Result<std::vector<int64_t>> dequantized_shape(std::string_view name, std::span<const int64_t> weight_shape,
                                               std::span<const int64_t> scales_shape, int bits, int group_size);

// One group's float32 parameters before rounding to the dtype.
struct GroupParams {
  float scale = 0;
  float bias = 0;
};

// Quantizes one group (w.size() values) into `codes` (same size).
// `dtype` is the input dtype, which only matters for kGpu's initial min.
// This is the reference arithmetic; quantize_rows runs the same through
// kernels.h. REQUIRES: bits valid, codes.size() == w.size() > 0.
GroupParams quantize_group(std::span<const float> w, int bits, QuantKernel kernel, DType dtype,
                           std::span<uint8_t> codes);

// The GPU kernels' initial min (the largest finite value of `dtype`), which
// the vector kernels need too.
float gpu_initial_min(DType dtype);

// Packs codes (each < 2^bits) into the LSB-first bitstream.
// REQUIRES: codes.size() * bits % 8 == 0, out.size() == codes.size()*bits/8.
void pack_codes(std::span<const uint8_t> codes, int bits, std::span<std::byte> out);
// The inverse. REQUIRES: codes.size() == packed.size() * 8 / bits.
void unpack_codes(std::span<const std::byte> packed, int bits, std::span<uint8_t> codes);

// Quantizes rows of `cols` values each (w.size() must be a multiple of
// cols). Outputs: packed w.size()*bits/8 bytes; scales and biases
// w.size()/group_size elements of `dtype` each, as little-endian bytes.
// kInvalidInput (naming `name`) on bad params, dtype or sizes.
Status quantize_rows(std::string_view name, std::span<const float> w, int64_t cols, DType dtype,
                     const QuantParams& params, std::span<std::byte> packed, std::span<std::byte> scales,
                     std::span<std::byte> biases);

// Dequantizes rows: out.size() values (a multiple of `cols`), from packed
// out.size()*bits/8 bytes and out.size()/group_size scales and biases of
// `dtype`. Each result is T(T(q*s)+b) as float32 (exact in T).
Status dequantize_rows(std::string_view name, std::span<const std::byte> packed, std::span<const std::byte> scales,
                       std::span<const std::byte> biases, DType dtype, int64_t cols, int bits, int group_size,
                       std::span<float> out);

// Whole-tensor helpers: they allocate their outputs.
struct QuantizedTensor {
  std::vector<int64_t> weight_shape;  // U32
  std::vector<int64_t> scales_shape;  // dtype, also the biases' shape
  DType dtype = DType::kF32;          // of scales and biases
  std::vector<std::byte> weight;
  std::vector<std::byte> scales;
  std::vector<std::byte> biases;
};

// Quantizes a float tensor given as raw bytes of `dtype`.
Result<QuantizedTensor> quantize_tensor(std::string_view name, DType dtype, std::span<const int64_t> shape,
                                        std::span<const std::byte> bytes, const QuantParams& params);

// Dequantizes into float32 values (exact values of `scales_dtype`); `shape`
// receives the float shape. weight bytes are U32 little-endian.
Result<std::vector<float>> dequantize_tensor(std::string_view name, std::span<const int64_t> weight_shape,
                                             std::span<const std::byte> weight, std::span<const int64_t> scales_shape,
                                             DType scales_dtype, std::span<const std::byte> scales,
                                             std::span<const std::byte> biases, int bits, int group_size,
                                             std::vector<int64_t>* shape);

}  // namespace mb
