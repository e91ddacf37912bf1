// ggml block rows in the matmul (kernels_ggml.cc) against the reference
// dequantizer of tensors/ggml_quants.h followed by a float product.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "inference/kernels.h"
#include "tensors/ggml_quants.h"

namespace mb::inference {
namespace {

constexpr GgmlType kAllTypes[] = {GgmlType::kF32,  GgmlType::kF16,  GgmlType::kBF16, GgmlType::kQ8_0, GgmlType::kQ4_0,
                                  GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K};

// A [rows, cols] matrix of one ggml type, quantized from normal values by the
// project's reference quantizer, and its dequantized values.
struct GgmlMatrix {
  WeightMatrix w;
  std::vector<uint8_t> bytes;
  std::vector<float> dense;
};

GgmlMatrix make_ggml(GgmlType type, int64_t rows, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> nd(0, 1);
  std::vector<float> values(rows * cols);
  for (float& v : values) v = nd(rng);
  GgmlMatrix m;
  m.bytes = quantize_rows(type, values.data(), rows, cols);
  m.dense.resize(rows * cols);
  dequantize_rows(type, m.bytes.data(), rows, cols, m.dense.data());
  m.w.rows = rows;
  m.w.cols = cols;
  m.w.format = WeightFormat::kGgml;
  m.w.ggml = type;
  m.w.data = reinterpret_cast<const std::byte*>(m.bytes.data());
  return m;
}

WeightMatrix dense_view(const GgmlMatrix& m) {
  WeightMatrix d{m.w.rows, m.w.cols, WeightFormat::kFloat, FloatType::kF32};
  d.data = reinterpret_cast<const std::byte*>(m.dense.data());
  return d;
}

std::vector<float> random_x(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> nd(0, 1);
  std::vector<float> x(n);
  for (float& v : x) v = nd(rng);
  return x;
}

// Column counts: multiples of 256 (K super-blocks) and, for the 32-value
// types, a row that 256 does not divide (the fallback rows).
std::vector<int64_t> test_cols(GgmlType t) {
  if (ggml_block_size(t) == 256) return {256, 512};
  return {96, 256};
}

// The block matmul equals dequantize_rows + the f32 matmul bit for bit (the
// same values summed in the same order), for decode and prefill.
TEST(GgmlKernels, EqualDequantizedFloatMatmul) {
  std::mt19937 rng(11);
  ThreadPool pool(2);
  for (GgmlType t : kAllTypes)
    for (int64_t cols : test_cols(t)) {
      GgmlMatrix m = make_ggml(t, 13, cols, rng);
      const WeightMatrix d = dense_view(m);
      for (int64_t n : {1, 3, 9}) {
        auto x = random_x(n * cols, rng);
        std::vector<float> y(n * 13), ref(n * 13);
        matmul(m.w, x.data(), n, y.data(), pool);
        matmul(d, x.data(), n, ref.data(), pool);
        EXPECT_EQ(std::memcmp(y.data(), ref.data(), y.size() * 4), 0)
            << m.w.describe() << " cols " << cols << " tokens " << n;
        // And the float matmul itself is a correct product (f64 reference).
        for (int64_t r = 0; r < 13; ++r) {
          double exact = 0, mag = 0;
          for (int64_t c = 0; c < cols; ++c) {
            exact += static_cast<double>(m.dense[r * cols + c]) * x[c];
            mag += std::fabs(static_cast<double>(m.dense[r * cols + c]) * x[c]);
          }
          ASSERT_NEAR(y[r], exact, 1e-5 * mag) << m.w.describe();
        }
      }
    }
}

TEST(GgmlKernels, DecodePrefillThreadsAndIsaAreBitIdentical) {
  std::mt19937 rng(12);
  ThreadPool one(1), three(3);
  for (GgmlType t : kAllTypes) {
    GgmlMatrix m = make_ggml(t, 37, test_cols(t).front(), rng);
    const int64_t n_tok = 11, cols = m.w.cols, rows = m.w.rows;
    auto x = random_x(n_tok * cols, rng);
    std::vector<float> prefill(n_tok * rows), prefill3(n_tok * rows), decode(n_tok * rows);
    std::vector<float> portable(n_tok * rows), portable_decode(n_tok * rows);
    matmul(m.w, x.data(), n_tok, prefill.data(), one);
    matmul(m.w, x.data(), n_tok, prefill3.data(), three);
    for (int64_t i = 0; i < n_tok; ++i) matmul(m.w, x.data() + i * cols, 1, decode.data() + i * rows, three);
    force_portable_kernels(true);
    matmul(m.w, x.data(), n_tok, portable.data(), three);
    for (int64_t i = 0; i < n_tok; ++i) matmul(m.w, x.data() + i * cols, 1, portable_decode.data() + i * rows, one);
    force_portable_kernels(false);
    const size_t bytes = prefill.size() * 4;
    EXPECT_EQ(std::memcmp(prefill.data(), prefill3.data(), bytes), 0) << m.w.describe();
    EXPECT_EQ(std::memcmp(prefill.data(), decode.data(), bytes), 0) << m.w.describe();
    EXPECT_EQ(std::memcmp(prefill.data(), portable.data(), bytes), 0) << m.w.describe() << " isa " << kernel_isa();
    EXPECT_EQ(std::memcmp(prefill.data(), portable_decode.data(), bytes), 0) << m.w.describe();
  }
}

TEST(GgmlKernels, GatherRowDequantizesExactly) {
  std::mt19937 rng(13);
  for (GgmlType t : kAllTypes) {
    GgmlMatrix m = make_ggml(t, 5, 256, rng);
    std::vector<float> row(256);
    for (int64_t r = 0; r < 5; ++r) {
      gather_row(m.w, r, row.data());
      ASSERT_EQ(std::memcmp(row.data(), m.dense.data() + r * 256, 256 * 4), 0) << m.w.describe() << " row " << r;
    }
  }
}

TEST(GgmlKernels, SizesAndNames) {
  std::mt19937 rng(14);
  GgmlMatrix q4k = make_ggml(GgmlType::kQ4_K, 3, 512, rng);
  EXPECT_EQ(q4k.w.row_bytes(), 2u * 144);
  EXPECT_EQ(q4k.w.total_bytes(), 3u * 2 * 144);
  EXPECT_EQ(q4k.w.describe(), "q4_K");
  GgmlMatrix q8 = make_ggml(GgmlType::kQ8_0, 2, 96, rng);
  EXPECT_EQ(q8.w.total_bytes(), 2u * 3 * 34);
}

}  // namespace
}  // namespace mb::inference
