#pragma once
// DType: the element types a safetensors file can declare, and the float
// conversions that bit-exact MLX reproduction needs.
//
// The enumerators are listed in the safetensors reference implementation's
// order ("increasing alignment"), so comparing two DTypes orders them the
// way the Hugging Face writer sorts tensors. Every type can be parsed and
// sized; only F16, BF16, F32 and F64 convert to and from float32 (the others,
// F8 included, give Errc::kUnsupported from the conversion functions).
//
// Conversions to the narrow types round to nearest, ties to even. bf16
// follows MLX exactly: a NaN of either sign becomes 0x7FC0. All functions
// are pure and allocation-free, so callers may split a tensor into ranges
// and convert them on several threads.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "base/result.h"

namespace mb {

enum class DType : uint8_t {
  kBool,
  kF4,
  kF6E2M3,
  kF6E3M2,
  kU8,
  kI8,
  kF8E5M2,
  kF8E4M3,
  kF8E8M0,
  kF8E4M3Fnuz,
  kF8E5M2Fnuz,
  kI16,
  kU16,
  kF16,
  kBF16,
  kI32,
  kU32,
  kF32,
  kC64,
  kF64,
  kI64,
  kU64,
};

// The safetensors spelling: "F32", "BF16", "F8_E4M3", ...
const char* dtype_name(DType dtype);
// nullopt for a name safetensors does not define (names are case-sensitive).
std::optional<DType> dtype_from_name(std::string_view name);

// Bits per element: 4 for F4, 6 for the F6 types, 8..64 for the rest.
int dtype_bits(DType dtype);
// Bytes per element; 0 for the sub-byte types F4 and F6.
size_t dtype_size(DType dtype);
// F16, BF16, F32 or F64: the types to_f32/from_f32 handle.
bool is_convertible_float(DType dtype);
// F16, BF16 or F32: the types MLX quantizes and stores scales in.
bool is_quantizable_float(DType dtype);
// The dtypes real models use and the model steps accept: F32, F16, BF16,
// U32, I8, U8, I32, I64, BOOL. Others (F64, the F8/F6/F4 types, C64, ...)
// would be copied into a model mlx_lm cannot load, or silently narrowed.
bool is_model_dtype(DType dtype);

// Scalar conversions, the only ones in the project (tensors/kernels.h and
// inference/kernels.h vectorize them with the same bits). f32 -> narrow
// rounds to nearest even; overflow gives infinity; NaN stays NaN (quiet;
// bf16 NaN is always 0x7FC0). f16 -> f32 makes a signalling NaN quiet, as
// x86 F16C and Arm FCVT do; bf16 -> f32 is exact bit placement, so a NaN
// keeps its payload on every path.
uint16_t f32_to_f16(float value);
float f16_to_f32(uint16_t bits);
uint16_t f32_to_bf16(float value);
inline float bf16_to_f32(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }
// Rounds `value` to the nearest value of `dtype` and back to float32
// (identity for F32 and F64). REQUIRES: is_quantizable_float(dtype) or kF64.
float round_to_dtype(float value, DType dtype);
// The same over a span, in place. F16 goes through kernels.h (F16C when the
// CPU has it): this runs once per weight when fusing or quantizing.
void round_to_dtype(std::span<float> values, DType dtype);
// The same from `in` into `out` (same size; they may be the same span).
void round_to_dtype(std::span<const float> in, std::span<float> out, DType dtype);

// Bulk conversions between raw little-endian tensor bytes and float32.
// `bytes` need not be aligned. REQUIRES nothing; sizes are checked:
// bytes.size() must equal values.size() * dtype_size(dtype).
// Errc::kUnsupported unless is_convertible_float(dtype).
Status to_f32(DType dtype, std::span<const std::byte> bytes, std::span<float> values);
Status from_f32(std::span<const float> values, DType dtype, std::span<std::byte> bytes);

}  // namespace mb
