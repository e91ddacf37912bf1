#include "tensors/dtype.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace mb {
namespace {

uint32_t bits_of(float f) { return std::bit_cast<uint32_t>(f); }
float float_of(uint32_t u) { return std::bit_cast<float>(u); }

TEST(DType, NamesRoundTrip) {
  for (int i = 0; i <= static_cast<int>(DType::kU64); ++i) {
    DType d = static_cast<DType>(i);
    auto back = dtype_from_name(dtype_name(d));
    ASSERT_TRUE(back.has_value()) << dtype_name(d);
    EXPECT_EQ(*back, d);
  }
  EXPECT_EQ(dtype_from_name("BF16"), DType::kBF16);
  EXPECT_EQ(dtype_from_name("F8_E4M3"), DType::kF8E4M3);
  EXPECT_EQ(dtype_from_name("F8_E5M2FNUZ"), DType::kF8E5M2Fnuz);
  EXPECT_FALSE(dtype_from_name("f32").has_value());
  EXPECT_FALSE(dtype_from_name("").has_value());
  EXPECT_FALSE(dtype_from_name("F128").has_value());
}

TEST(DType, SizesAndOrder) {
  EXPECT_EQ(dtype_size(DType::kBool), 1u);
  EXPECT_EQ(dtype_size(DType::kBF16), 2u);
  EXPECT_EQ(dtype_size(DType::kF32), 4u);
  EXPECT_EQ(dtype_size(DType::kU64), 8u);
  EXPECT_EQ(dtype_size(DType::kF4), 0u);
  EXPECT_EQ(dtype_bits(DType::kF4), 4);
  EXPECT_EQ(dtype_bits(DType::kF6E3M2), 6);
  EXPECT_EQ(dtype_bits(DType::kF8E8M0), 8);
  EXPECT_EQ(dtype_bits(DType::kC64), 64);
  // The safetensors writer sorts by this order: alignment increases.
  EXPECT_LT(DType::kU8, DType::kF16);
  EXPECT_LT(DType::kF16, DType::kBF16);
  EXPECT_LT(DType::kBF16, DType::kF32);
  EXPECT_LT(DType::kF32, DType::kI64);
}

TEST(DType, F16KnownValues) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3C00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xC000);
  EXPECT_EQ(f32_to_f16(0.1f), 0x2E66);
  EXPECT_EQ(f32_to_f16(0.0f), 0x0000);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65519.996f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);  // tie rounds to even: infinity
  EXPECT_EQ(f32_to_f16(1e10f), 0x7C00);
  EXPECT_EQ(f32_to_f16(-std::numeric_limits<float>::infinity()), 0xFC00);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // tie to even 0
  EXPECT_EQ(f32_to_f16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 ulp: tie to even 2
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(f32_to_f16(-1.0e-7f), 0x8002);               // the spec's -eps in f16
  uint16_t nan = f32_to_f16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7C00, 0x7C00);
  EXPECT_NE(nan & 0x03FF, 0);
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(float_of(0x7F800001)))));  // signaling NaN stays NaN
}

TEST(DType, F16AllPatternsRoundTrip) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = f16_to_f32(static_cast<uint16_t>(h));
    if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) {
      EXPECT_TRUE(std::isnan(f));
      continue;
    }
    ASSERT_EQ(f32_to_f16(f), h) << std::hex << h;
  }
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x03FF), std::ldexp(1023.0f, -24));
  EXPECT_EQ(f16_to_f32(0x7BFF), 65504.0f);
}

// Midpoints between neighbours must round to the even one, and anything off
// the midpoint to the nearer one.
TEST(DType, F16RoundsToNearestEven) {
  for (uint32_t h = 0; h < 0x7BFF; ++h) {
    float a = f16_to_f32(static_cast<uint16_t>(h));
    float b = f16_to_f32(static_cast<uint16_t>(h + 1));
    float mid = (a + b) * 0.5f;  // exact: one bit more than f16 holds
    uint16_t even = (h & 1) ? static_cast<uint16_t>(h + 1) : static_cast<uint16_t>(h);
    ASSERT_EQ(f32_to_f16(mid), even) << std::hex << h;
    ASSERT_EQ(f32_to_f16(std::nextafter(mid, 0.0f)), h) << std::hex << h;
    ASSERT_EQ(f32_to_f16(std::nextafter(mid, 1e9f)), h + 1) << std::hex << h;
    ASSERT_EQ(f32_to_f16(-mid), even | 0x8000) << std::hex << h;
  }
}

#if defined(__aarch64__)
using CompilerHalf = __fp16;  // GCC 12's C++ front end has no _Float16 on aarch64
#define MB_HAVE_COMPILER_HALF 1
#elif defined(__FLT16_MANT_DIG__)
using CompilerHalf = _Float16;
#define MB_HAVE_COMPILER_HALF 1
#endif

#ifdef MB_HAVE_COMPILER_HALF
// The compiler's own float->half conversion is an independent reference.
TEST(DType, F16MatchesCompilerConversion) {
  for (uint64_t u = 0; u <= 0xFFFFFFFFull; u += 4093) {
    float f = float_of(static_cast<uint32_t>(u));
    if (std::isnan(f)) continue;
    CompilerHalf h = static_cast<CompilerHalf>(f);
    uint16_t want;
    std::memcpy(&want, &h, 2);
    ASSERT_EQ(f32_to_f16(f), want) << std::hex << u;
  }
}
#endif

TEST(DType, Bf16KnownValues) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(f32_to_bf16(float_of(0x3DCCCCCD)), 0x3DCD);  // 0.1f
  EXPECT_EQ(f32_to_bf16(float_of(0x3F808000)), 0x3F80);  // tie, even stays
  EXPECT_EQ(f32_to_bf16(float_of(0x3F818000)), 0x3F82);  // tie, odd rounds up
  EXPECT_EQ(f32_to_bf16(float_of(0x3F808001)), 0x3F81);
  EXPECT_EQ(f32_to_bf16(float_of(0xB3D6BF95)), 0xB3D7);  // the spec's -eps
  EXPECT_EQ(f32_to_bf16(float_of(0x7F7FFFFF)), 0x7F80);  // FLT_MAX rounds to inf
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(f32_to_bf16(-std::numeric_limits<float>::infinity()), 0xFF80);
  // MLX: every NaN, whatever its sign or payload, becomes 0x7FC0.
  EXPECT_EQ(f32_to_bf16(float_of(0x7FC00000)), 0x7FC0);
  EXPECT_EQ(f32_to_bf16(float_of(0xFFC00000)), 0x7FC0);
  EXPECT_EQ(f32_to_bf16(float_of(0x7F800001)), 0x7FC0);
  EXPECT_EQ(f32_to_bf16(float_of(0x7FFFFFFF)), 0x7FC0);
  EXPECT_EQ(bf16_to_f32(0x3DCD), float_of(0x3DCD0000));
}

TEST(DType, Bf16AllPatternsAndMidpoints) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = bf16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_EQ(f32_to_bf16(f), 0x7FC0);
      continue;
    }
    ASSERT_EQ(f32_to_bf16(f), h) << std::hex << h;
    // The f32 halfway to the next pattern (same sign, larger magnitude).
    if ((h & 0x7FFF) < 0x7F7F) {
      uint32_t mid = (h << 16) | 0x8000;
      uint16_t even = (h & 1) ? static_cast<uint16_t>(h + 1) : static_cast<uint16_t>(h);
      ASSERT_EQ(f32_to_bf16(float_of(mid)), even) << std::hex << h;
      ASSERT_EQ(f32_to_bf16(float_of(mid - 1)), h);
      ASSERT_EQ(f32_to_bf16(float_of(mid + 1)), h + 1);
    }
  }
}

TEST(DType, RoundToDtype) {
  EXPECT_EQ(round_to_dtype(0.3f, DType::kF32), 0.3f);
  EXPECT_EQ(bits_of(round_to_dtype(0.3f, DType::kBF16)), 0x3E9A0000u);
  EXPECT_EQ(round_to_dtype(0.3f, DType::kF16), f16_to_f32(0x34CD));
}

TEST(DType, BulkConversionsRoundTripUnaligned) {
  std::vector<float> values;
  for (int i = -300; i < 300; ++i) values.push_back(static_cast<float>(i) * 0.37f);
  for (DType d : {DType::kF16, DType::kBF16, DType::kF32, DType::kF64}) {
    std::vector<std::byte> storage(values.size() * dtype_size(d) + 1);
    std::span<std::byte> bytes(storage.data() + 1, values.size() * dtype_size(d));  // misaligned on purpose
    ASSERT_TRUE(from_f32(values, d, bytes).ok());
    std::vector<float> back(values.size());
    ASSERT_TRUE(to_f32(d, bytes, back).ok());
    for (size_t i = 0; i < values.size(); ++i) ASSERT_EQ(back[i], round_to_dtype(values[i], d)) << dtype_name(d);
  }
}

TEST(DType, BulkConversionErrors) {
  std::vector<std::byte> bytes(6);
  std::vector<float> values(2);
  Status st = to_f32(DType::kF32, bytes, values);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kInvalidInput);
  st = to_f32(DType::kF8E4M3, std::span(bytes).first(2), values);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kUnsupported);
  st = from_f32(values, DType::kI32, std::span(bytes).first(8));
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(to_f32(DType::kF16, {}, {}).ok());
}

TEST(DType, SpanRoundingMatchesTheScalarRounding) {
  // A stride through every f32 bit pattern, plus each f16 rounding boundary
  // (normal/subnormal edge, overflow edge, ties) and its neighbours.
  std::vector<float> values;
  for (uint64_t u = 0; u <= 0xFFFFFFFFull; u += 65537) values.push_back(std::bit_cast<float>(static_cast<uint32_t>(u)));
  for (uint32_t edge : {0x38800000u, 0x387FF000u, 0x477FF000u, 0x477FE000u, 0x3F801000u, 0x3F803000u, 0x7F800000u,
                        0x7FC00001u, 0x33000000u})
    for (uint32_t sign : {0u, 0x80000000u})
      for (int d = -3; d <= 3; ++d) values.push_back(std::bit_cast<float>((edge + static_cast<uint32_t>(d)) | sign));
  for (DType dtype : {DType::kF16, DType::kBF16, DType::kF32}) {
    std::vector<float> rounded = values;
    round_to_dtype(rounded, dtype);
    for (size_t i = 0; i < values.size(); ++i) {
      const uint32_t want = std::bit_cast<uint32_t>(round_to_dtype(values[i], dtype));
      ASSERT_EQ(std::bit_cast<uint32_t>(rounded[i]), want)
          << dtype_name(dtype) << " of 0x" << std::hex << std::bit_cast<uint32_t>(values[i]);
    }
  }
}

TEST(DType, ModelDtypesAreTheOnesRealModelsUse) {
  for (DType d : {DType::kF32, DType::kF16, DType::kBF16, DType::kU32, DType::kI8, DType::kU8, DType::kI32, DType::kI64,
                  DType::kBool})
    EXPECT_TRUE(is_model_dtype(d)) << dtype_name(d);
  for (DType d : {DType::kF64, DType::kF8E4M3, DType::kF8E5M2, DType::kF4, DType::kC64, DType::kU64, DType::kI16})
    EXPECT_FALSE(is_model_dtype(d)) << dtype_name(d);
}

}  // namespace
}  // namespace mb
