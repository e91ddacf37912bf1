// Bit-exactness of tensors/ggml_quants against llama.cpp's own reference
// quantizers (quantize_row_*_ref in the prebuilt libggml-base.so), on random
// and adversarial rows. A missing library fails the test with a message.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "base/test_paths.h"
#include "tensors/ggml_quants.h"
#include "tests/ggml_reference.h"

namespace mb {
namespace {

struct Rows {
  std::string name;
  std::vector<float> values;
};

// Random rows at several scales plus the cases that stress the scale
// search: zeros, constants, huge and tiny magnitudes, one sign only.
std::vector<Rows> test_rows(int64_t cols) {
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<Rows> rows;
  for (float scale : {1.0f, 0.02f, 1e-6f, 3e4f}) {
    std::vector<float> x(cols * 8);
    for (float& v : x) v = normal(rng) * scale;
    rows.push_back({"normal*" + std::to_string(scale), x});
  }
  rows.push_back({"zeros", std::vector<float>(cols, 0.0f)});
  rows.push_back({"constant", std::vector<float>(cols, 0.37f)});
  rows.push_back({"negative constant", std::vector<float>(cols, -2.5f)});
  std::vector<float> neg(cols), spike(cols, 1e-3f), tiny(cols);
  for (int64_t j = 0; j < cols; ++j) {
    neg[j] = -std::fabs(normal(rng));
    tiny[j] = normal(rng) * 1e-30f;
  }
  spike[7] = 6e4f;
  // Each 32-block holds ±127 (so Q8_0's d is 1 and x/d is x) and values on
  // k + 0.5: the ties a rounding rule decides, both signs.
  std::vector<float> halves(cols);
  for (int64_t j = 0; j < cols; ++j)
    halves[j] = j % 32 == 0 ? (j % 64 == 0 ? 127.0f : -127.0f) : static_cast<float>(j % 127) - 63.5f;
  rows.push_back({"halves", halves});
  rows.push_back({"negative only", neg});
  rows.push_back({"one spike", spike});
  rows.push_back({"subnormal", tiny});
  return rows;
}

void expect_matches_llama(GgmlType type, const char* quantize_name, const char* dequantize_name) {
  std::string error;
  void* lib = test::open_ggml_base(test::source_dir(), &error);
  ASSERT_NE(lib, nullptr) << error;
  auto ref_quantize = test::ggml_symbol<test::GgmlQuantizeRow>(lib, quantize_name);
  auto ref_dequantize = test::ggml_symbol<test::GgmlDequantizeRow>(lib, dequantize_name);
  ASSERT_NE(ref_quantize, nullptr) << quantize_name << " not in libggml-base.so";
  ASSERT_NE(ref_dequantize, nullptr) << dequantize_name << " not in libggml-base.so";
  const int64_t cols = 512;
  for (const Rows& r : test_rows(cols)) {
    const int64_t n = static_cast<int64_t>(r.values.size());
    const std::vector<uint8_t> ours = quantize_rows(type, r.values.data(), n / cols, cols);
    std::vector<uint8_t> theirs(ours.size(), 0xAA);
    ref_quantize(r.values.data(), theirs.data(), n);
    for (size_t i = 0; i < ours.size(); ++i) {
      ASSERT_EQ(ours[i], theirs[i]) << ggml_type_name(type) << " on " << r.name << ", byte " << i << " of "
                                    << ours.size();
    }
    std::vector<float> ours_f(n), theirs_f(n);
    dequantize_rows(type, ours.data(), n / cols, cols, ours_f.data());
    ref_dequantize(theirs.data(), theirs_f.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(std::bit_cast<uint32_t>(ours_f[i]), std::bit_cast<uint32_t>(theirs_f[i]))
          << ggml_type_name(type) << " on " << r.name << " at " << i;
    }
  }
}

TEST(GgmlQuantsCompat, Q8_0) { expect_matches_llama(GgmlType::kQ8_0, "quantize_row_q8_0_ref", "dequantize_row_q8_0"); }
TEST(GgmlQuantsCompat, Q4_0) { expect_matches_llama(GgmlType::kQ4_0, "quantize_row_q4_0_ref", "dequantize_row_q4_0"); }
TEST(GgmlQuantsCompat, Q5_0) { expect_matches_llama(GgmlType::kQ5_0, "quantize_row_q5_0_ref", "dequantize_row_q5_0"); }
TEST(GgmlQuantsCompat, Q5_1) { expect_matches_llama(GgmlType::kQ5_1, "quantize_row_q5_1_ref", "dequantize_row_q5_1"); }
TEST(GgmlQuantsCompat, Q6_K) { expect_matches_llama(GgmlType::kQ6_K, "quantize_row_q6_K_ref", "dequantize_row_q6_K"); }
TEST(GgmlQuantsCompat, Q4_K) { expect_matches_llama(GgmlType::kQ4_K, "quantize_row_q4_K_ref", "dequantize_row_q4_K"); }
TEST(GgmlQuantsCompat, Q5_K) { expect_matches_llama(GgmlType::kQ5_K, "quantize_row_q5_K_ref", "dequantize_row_q5_K"); }

}  // namespace
}  // namespace mb
