#include "tensors/dtype.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>
#include <limits>

#include "tensors/kernels.h"

namespace mb {

static_assert(std::endian::native == std::endian::little,
              "tensor bytes are little-endian and are reinterpreted in place");

namespace {

struct DTypeRow {
  DType dtype;
  const char* name;
  int bits;
};

// In enum order, so kRows[static_cast<int>(d)].dtype == d.
constexpr DTypeRow kRows[] = {
    {DType::kBool, "BOOL", 8},
    {DType::kF4, "F4", 4},
    {DType::kF6E2M3, "F6_E2M3", 6},
    {DType::kF6E3M2, "F6_E3M2", 6},
    {DType::kU8, "U8", 8},
    {DType::kI8, "I8", 8},
    {DType::kF8E5M2, "F8_E5M2", 8},
    {DType::kF8E4M3, "F8_E4M3", 8},
    {DType::kF8E8M0, "F8_E8M0", 8},
    {DType::kF8E4M3Fnuz, "F8_E4M3FNUZ", 8},
    {DType::kF8E5M2Fnuz, "F8_E5M2FNUZ", 8},
    {DType::kI16, "I16", 16},
    {DType::kU16, "U16", 16},
    {DType::kF16, "F16", 16},
    {DType::kBF16, "BF16", 16},
    {DType::kI32, "I32", 32},
    {DType::kU32, "U32", 32},
    {DType::kF32, "F32", 32},
    {DType::kC64, "C64", 64},
    {DType::kF64, "F64", 64},
    {DType::kI64, "I64", 64},
    {DType::kU64, "U64", 64},
};

const DTypeRow& row(DType dtype) { return kRows[static_cast<int>(dtype)]; }

// Shifts `m` right by `s` (1..31) rounding to nearest, ties to even. A carry
// out of the mantissa field is what the callers want: it bumps the exponent.
uint32_t shift_round_even(uint32_t m, int s) {
  uint32_t r = m >> s;
  uint32_t rem = m & ((uint32_t{1} << s) - 1);
  uint32_t half = uint32_t{1} << (s - 1);
  if (rem > half || (rem == half && (r & 1))) ++r;
  return r;
}

}  // namespace

const char* dtype_name(DType dtype) { return row(dtype).name; }

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const DTypeRow& r : kRows)
    if (name == r.name) return r.dtype;
  return std::nullopt;
}

int dtype_bits(DType dtype) { return row(dtype).bits; }

size_t dtype_size(DType dtype) {
  int bits = row(dtype).bits;
  return bits % 8 == 0 ? static_cast<size_t>(bits / 8) : 0;
}

bool is_convertible_float(DType dtype) {
  return dtype == DType::kF16 || dtype == DType::kBF16 || dtype == DType::kF32 || dtype == DType::kF64;
}

bool is_model_dtype(DType dtype) {
  switch (dtype) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kU32:
    case DType::kI8:
    case DType::kU8:
    case DType::kI32:
    case DType::kI64:
    case DType::kBool:
      return true;
    default:
      return false;
  }
}

bool is_quantizable_float(DType dtype) { return dtype == DType::kF16 || dtype == DType::kBF16 || dtype == DType::kF32; }

uint16_t f32_to_f16(float value) {
  uint32_t x = std::bit_cast<uint32_t>(value);
  uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  uint32_t abs = x & 0x7FFFFFFF;
  if (abs > 0x7F800000)  // NaN: keep it quiet and keep the payload's top bits
    return static_cast<uint16_t>(sign | 0x7E00 | ((abs >> 13) & 0x3FF));
  // 65520 is halfway between 65504 (odd mantissa) and 65536, so it and
  // everything above rounds to infinity.
  if (abs >= 0x477FF000) return static_cast<uint16_t>(sign | 0x7C00);
  int e = static_cast<int>(abs >> 23);
  uint32_t mant = abs & 0x7FFFFF;
  if (e >= 113) {  // normal f16: rebias the exponent, round off 13 bits
    uint32_t v = (static_cast<uint32_t>(e - 112) << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (v & 1))) ++v;
    return static_cast<uint16_t>(sign | v);
  }
  // Subnormal f16 (units of 2^-24). Below 2^-25 (e < 102) everything rounds
  // to zero; exactly 2^-25 is a tie that goes to the even 0, which the
  // general path below also gets right.
  if (e < 102) return sign;
  uint32_t m24 = mant | 0x800000;
  return static_cast<uint16_t>(sign | shift_round_even(m24, 126 - e));
}

float f16_to_f32(uint16_t bits) {
  uint32_t sign = static_cast<uint32_t>(bits & 0x8000) << 16;
  uint32_t e = (bits >> 10) & 0x1F;
  uint32_t m = bits & 0x3FF;
  uint32_t out;
  if (e == 0x1F) {
    // Infinity, or a NaN made quiet as the hardware conversions (x86 F16C,
    // Arm FCVT) make it, so the vector kernels give the same bits.
    out = sign | 0x7F800000 | (m != 0 ? 0x400000u : 0u) | (m << 13);
  } else if (e != 0) {
    out = sign | ((e + 112) << 23) | (m << 13);
  } else if (m == 0) {
    out = sign;
  } else {
    // Subnormal: normalize. m * 2^-24 with m < 2^10.
    int shift = std::countl_zero(m) - 21;  // bring the top bit to bit 10
    m = (m << shift) & 0x3FF;
    out = sign | (static_cast<uint32_t>(113 - shift) << 23) | (m << 13);
  }
  return std::bit_cast<float>(out);
}

uint16_t f32_to_bf16(float value) {
  uint32_t u = std::bit_cast<uint32_t>(value);
  // MLX's rule: any NaN becomes the positive quiet NaN 0x7FC0.
  if ((u & 0x7FFFFFFF) > 0x7F800000) return 0x7FC0;
  u += 0x7FFF + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

float round_to_dtype(float value, DType dtype) {
  switch (dtype) {
    case DType::kF16:
      return f16_to_f32(f32_to_f16(value));
    case DType::kBF16:
      return bf16_to_f32(f32_to_bf16(value));
    default:
      return value;
  }
}

void round_to_dtype(std::span<float> values, DType dtype) { round_to_dtype(values, values, dtype); }

void round_to_dtype(std::span<const float> in, std::span<float> out, DType dtype) {
  assert(in.size() == out.size());
  if (dtype == DType::kF16) {
    kernels::table().round_f16(in.data(), out.data(), static_cast<int64_t>(in.size()));
  } else if (dtype == DType::kBF16) {
    for (size_t i = 0; i < in.size(); ++i) out[i] = bf16_to_f32(f32_to_bf16(in[i]));
  } else if (in.data() != out.data()) {
    std::copy(in.begin(), in.end(), out.begin());
  }
}

namespace {

Status check_sizes(DType dtype, size_t nbytes, size_t count, const char* what) {
  if (!is_convertible_float(dtype))
    return make_error(Errc::kUnsupported, "", "{}: dtype {} does not convert to float32", what, dtype_name(dtype));
  if (nbytes != count * dtype_size(dtype))
    return make_error(Errc::kInvalidInput, "", "{}: {} bytes of {} do not hold {} values", what, nbytes,
                      dtype_name(dtype), count);
  return {};
}

}  // namespace

Status to_f32(DType dtype, std::span<const std::byte> bytes, std::span<float> values) {
  MB_TRY(check_sizes(dtype, bytes.size(), values.size(), "to_f32"));
  const std::byte* p = bytes.data();
  size_t n = values.size();
  switch (dtype) {
    case DType::kF32:
      if (n) std::memcpy(values.data(), p, n * 4);
      break;
    case DType::kF16:
      kernels::table().f16_to_f32(p, values.data(), static_cast<int64_t>(n));
      break;
    case DType::kBF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        values[i] = bf16_to_f32(h);
      }
      break;
    case DType::kF64:
      for (size_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, p + 8 * i, 8);
        values[i] = static_cast<float>(d);
      }
      break;
    default:
      break;
  }
  return {};
}

Status from_f32(std::span<const float> values, DType dtype, std::span<std::byte> bytes) {
  MB_TRY(check_sizes(dtype, bytes.size(), values.size(), "from_f32"));
  std::byte* p = bytes.data();
  size_t n = values.size();
  switch (dtype) {
    case DType::kF32:
      if (n) std::memcpy(p, values.data(), n * 4);
      break;
    case DType::kF16:
      kernels::table().f32_to_f16(values.data(), p, static_cast<int64_t>(n));
      break;
    case DType::kBF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h = f32_to_bf16(values[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
      break;
    case DType::kF64:
      for (size_t i = 0; i < n; ++i) {
        double d = values[i];
        std::memcpy(p + 8 * i, &d, 8);
      }
      break;
    default:
      break;
  }
  return {};
}

}  // namespace mb
