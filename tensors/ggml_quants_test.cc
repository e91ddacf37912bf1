// Worked vectors for the GGUF block quantizers (docs/formats/gguf-blocks.md).
// Bit-exactness against llama.cpp itself is tests/ggml_quants_compat_test.cc.
#include "tensors/ggml_quants.h"

#include <gtest/gtest.h>

#include <vector>

namespace mb {
namespace {

std::vector<float> ramp(float step) {
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16) * step;
  return x;
}

TEST(GgmlQuants, SizesAndIds) {
  EXPECT_EQ(ggml_type_size(GgmlType::kQ8_0), 34u);
  EXPECT_EQ(ggml_type_size(GgmlType::kQ6_K), 210u);
  EXPECT_EQ(ggml_block_size(GgmlType::kQ4_K), 256);
  EXPECT_EQ(ggml_row_size(GgmlType::kQ4_0, 64), 36u);
  EXPECT_FALSE(ggml_row_fits(GgmlType::kQ4_K, 896 + 32));
  EXPECT_EQ(ggml_type_from_id(30), GgmlType::kBF16);
  EXPECT_FALSE(ggml_type_from_id(3).has_value());
  EXPECT_STREQ(ggml_type_name(GgmlType::kQ5_K), "q5_K");
}

// -16..15: absmax 16, d = 16/127; code 0 for x = 0, -127 for -16.
TEST(GgmlQuants, Q8_0WorkedBlock) {
  const std::vector<float> x = ramp(1.0f);
  const std::vector<uint8_t> q = quantize_rows(GgmlType::kQ8_0, x.data(), 1, 32);
  ASSERT_EQ(q.size(), 34u);
  EXPECT_EQ(q[0] | (q[1] << 8), 0x3008);  // f16(16/127) = 0.1259765625
  EXPECT_EQ(static_cast<int8_t>(q[2]), -127);
  EXPECT_EQ(static_cast<int8_t>(q[2 + 16]), 0);
  EXPECT_EQ(static_cast<int8_t>(q[2 + 17]), 8);  // round(1 * 127/16 = 7.94)
  std::vector<float> y(32);
  dequantize_rows(GgmlType::kQ8_0, q.data(), 1, 32, y.data());
  for (int j = 0; j < 32; ++j) EXPECT_NEAR(y[j], x[j], 0.07f) << j;
}

// -16..15: max = -16, d = 2; x = -16 -> 0, x = 0 -> 8, x = 15 -> 15 (clamped).
TEST(GgmlQuants, Q4_0WorkedBlock) {
  const std::vector<float> x = ramp(1.0f);
  const std::vector<uint8_t> q = quantize_rows(GgmlType::kQ4_0, x.data(), 1, 32);
  ASSERT_EQ(q.size(), 18u);
  EXPECT_EQ(q[0] | (q[1] << 8), 0x4000);  // f16(2.0)
  EXPECT_EQ(q[2] & 0x0F, 0);              // x[0] = -16
  EXPECT_EQ(q[2] >> 4, 8);                // x[16] = 0
  EXPECT_EQ(q[2 + 15] >> 4, 15);          // x[31] = 15 -> 16, clamped to 15
}

TEST(GgmlQuants, Q5BlocksRoundTrip) {
  const std::vector<float> x = ramp(0.25f);
  for (GgmlType type : {GgmlType::kQ5_0, GgmlType::kQ5_1}) {
    const std::vector<uint8_t> q = quantize_rows(type, x.data(), 1, 32);
    std::vector<float> y(32);
    dequantize_rows(type, q.data(), 1, 32, y.data());
    for (int j = 0; j < 32; ++j) EXPECT_NEAR(y[j], x[j], 0.13f) << ggml_type_name(type) << " " << j;
  }
  // Q5_1 on -4..3.75: d = 7.75/31 = 0.25, m = -4; codes are exactly j.
  const std::vector<uint8_t> q = quantize_rows(GgmlType::kQ5_1, x.data(), 1, 32);
  EXPECT_EQ(q[0] | (q[1] << 8), 0x3400);  // f16(0.25)
  EXPECT_EQ(q[2] | (q[3] << 8), 0xC400);  // f16(-4)
  const uint32_t qh = q[4] | (q[5] << 8) | (q[6] << 16) | (static_cast<uint32_t>(q[7]) << 24);
  EXPECT_EQ(qh, 0xFFFF0000u);  // codes 16..31 have bit 4 set
  EXPECT_EQ(q[8], 0x00);       // codes 0 and 16 (low nibbles 0, 0)
  EXPECT_EQ(q[9], 0x11);       // codes 1 and 17
}

TEST(GgmlQuants, ZeroBlockHasZeroScale) {
  const std::vector<float> x(32, 0.0f);
  for (GgmlType type : {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ5_0, GgmlType::kQ5_1}) {
    const std::vector<uint8_t> q = quantize_rows(type, x.data(), 1, 32);
    std::vector<float> y(32, 1.0f);
    dequantize_rows(type, q.data(), 1, 32, y.data());
    for (float v : y) EXPECT_EQ(v, 0.0f) << ggml_type_name(type);
  }
}

}  // namespace
}  // namespace mb
