#include "inference/kernels.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace mb::inference {
namespace {

// An LSB-first bitstream packer (docs/formats/mlx-quantization.md §4), independent of the
// kernels' unpacking code.
std::vector<uint8_t> pack_codes(const std::vector<int>& codes, int bits) {
  std::vector<uint8_t> out((codes.size() * bits + 7) / 8, 0);
  for (size_t i = 0; i < codes.size(); ++i)
    for (int b = 0; b < bits; ++b)
      if (codes[i] >> b & 1) {
        size_t bit = i * bits + b;
        out[bit / 8] |= static_cast<uint8_t>(1u << (bit % 8));
      }
  return out;
}

std::vector<uint32_t> as_words(const std::vector<uint8_t>& bytes) {
  std::vector<uint32_t> w(bytes.size() / 4);
  std::memcpy(w.data(), bytes.data(), w.size() * 4);
  return w;
}

uint16_t to_bf16(float f) {  // round to nearest even
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fff + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

uint16_t to_f16(float f) {  // normal range only, truncating: good enough for test data
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint32_t sign = (u >> 16) & 0x8000;
  int exp = static_cast<int>((u >> 23) & 0xff) - 127 + 15;
  if (exp <= 0) return static_cast<uint16_t>(sign);
  return static_cast<uint16_t>(sign | (exp << 10) | ((u >> 13) & 0x3ff));
}

TEST(Kernels, PackerMatchesMlxTestVectors) {
  // docs/formats/mlx-quantization.md §5.1: 32 codes q_i = i mod 2^b.
  auto words = [](int bits) {
    std::vector<int> codes(32);
    for (int i = 0; i < 32; ++i) codes[i] = i % (1 << bits);
    return as_words(pack_codes(codes, bits));
  };
  EXPECT_EQ(words(2), (std::vector<uint32_t>{0xE4E4E4E4, 0xE4E4E4E4}));
  EXPECT_EQ(words(3), (std::vector<uint32_t>{0x88FAC688, 0xC688FAC6, 0xFAC688FA}));
  EXPECT_EQ(words(4), (std::vector<uint32_t>{0x76543210, 0xFEDCBA98, 0x76543210, 0xFEDCBA98}));
  EXPECT_EQ(words(5), (std::vector<uint32_t>{0x8A418820, 0xC5A92839, 0xCA307B9A, 0x38BDAB49, 0xFFBBCDEB}));
  EXPECT_EQ(words(6), (std::vector<uint32_t>{0x440C2040, 0xA2481C61, 0x3CE34C2C, 0x544D2450, 0xA6585D65, 0x7DE75C6D}));
}

TEST(Kernels, FloatConversions) {
  EXPECT_EQ(bf16_to_f32(0x3FA0), 1.25f);
  EXPECT_EQ(f16_to_f32(0x3C00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xBC00), -1.0f);
  EXPECT_EQ(f16_to_f32(0x2E66), 0.0999755859375f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(f16_to_f32(0x8002), -std::ldexp(1.0f, -23));
  EXPECT_TRUE(std::isinf(f16_to_f32(0x7C00)));
}

// A random matrix in one storage format plus its exact f32 values.
struct TestMatrix {
  WeightMatrix w;
  std::vector<uint8_t> data, scales, biases;
  std::vector<float> dense;      // dequantized values (s*q + b in f32)
  std::vector<float> magnitude;  // per-element |contribution| scale for error bounds
};

TestMatrix make_float(int64_t rows, int64_t cols, FloatType t, std::mt19937& rng) {
  std::normal_distribution<float> nd(0, 1);
  TestMatrix m;
  m.w = {rows, cols, WeightFormat::kFloat, t};
  m.data.resize(rows * cols * float_type_size(t));
  m.dense.resize(rows * cols);
  for (int64_t i = 0; i < rows * cols; ++i) {
    float v = nd(rng);
    if (t == FloatType::kF32) {
      std::memcpy(m.data.data() + 4 * i, &v, 4);
    } else {
      uint16_t h = t == FloatType::kBF16 ? to_bf16(v) : to_f16(v);
      std::memcpy(m.data.data() + 2 * i, &h, 2);
    }
    m.dense[i] = load_float(reinterpret_cast<const std::byte*>(m.data.data()), t, i);
  }
  m.magnitude = m.dense;
  m.w.data = reinterpret_cast<const std::byte*>(m.data.data());
  return m;
}

TestMatrix make_affine(int64_t rows, int64_t cols, int bits, int gs, FloatType t, std::mt19937& rng) {
  std::uniform_int_distribution<int> code(0, (1 << bits) - 1);
  std::normal_distribution<float> nd(0, 1);
  TestMatrix m;
  m.w = {rows, cols, WeightFormat::kAffine, t, bits, gs};
  const int64_t groups = cols / gs;
  const size_t es = float_type_size(t);
  m.scales.resize(rows * groups * es);
  m.biases.resize(rows * groups * es);
  m.dense.resize(rows * cols);
  m.magnitude.resize(rows * cols);
  auto put = [&](std::vector<uint8_t>& v, int64_t i, float f) {
    if (t == FloatType::kF32) {
      std::memcpy(v.data() + 4 * i, &f, 4);
    } else {
      uint16_t h = t == FloatType::kBF16 ? to_bf16(f) : to_f16(f);
      std::memcpy(v.data() + 2 * i, &h, 2);
    }
    return load_float(reinterpret_cast<const std::byte*>(v.data()), t, i);
  };
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<int> codes(cols);
    for (auto& c : codes) c = code(rng);
    auto packed = pack_codes(codes, bits);
    m.data.insert(m.data.end(), packed.begin(), packed.end());
    for (int64_t g = 0; g < groups; ++g) {
      float s = put(m.scales, r * groups + g, nd(rng) * 0.1f);
      float b = put(m.biases, r * groups + g, nd(rng));
      for (int64_t c = g * gs; c < (g + 1) * gs; ++c) {
        m.dense[r * cols + c] = s * static_cast<float>(codes[c]) + b;
        m.magnitude[r * cols + c] = std::fabs(s * static_cast<float>(codes[c])) + std::fabs(b);
      }
    }
  }
  m.w.data = reinterpret_cast<const std::byte*>(m.data.data());
  m.w.scales = reinterpret_cast<const std::byte*>(m.scales.data());
  m.w.biases = reinterpret_cast<const std::byte*>(m.biases.data());
  return m;
}

std::vector<float> random_x(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> nd(0, 1);
  std::vector<float> x(n);
  for (auto& v : x) v = nd(rng);
  return x;
}

// Compares matmul with a float64 product of the dequantized values. Rounding
// error of f32 sums in the 16-lane order is at most about (cols/16 + 6) * 2^-24
// of the sum of absolute terms (< 2e-6 for cols <= 256); 1e-5 leaves margin.
constexpr double kRelTol = 1e-5;

void check_against_reference(const TestMatrix& m, int64_t n_tok, ThreadPool& pool, std::mt19937& rng) {
  const int64_t rows = m.w.rows, cols = m.w.cols;
  auto x = random_x(n_tok * cols, rng);
  std::vector<float> y(n_tok * rows);
  matmul(m.w, x.data(), n_tok, y.data(), pool);
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      double ref = 0, mag = 0;
      for (int64_t c = 0; c < cols; ++c) {
        ref += static_cast<double>(m.dense[r * cols + c]) * x[t * cols + c];
        mag += std::fabs(static_cast<double>(m.magnitude[r * cols + c]) * x[t * cols + c]);
      }
      ASSERT_NEAR(y[t * rows + r], ref, kRelTol * mag) << m.w.describe() << " row " << r << " token " << t;
    }
}

TEST(Kernels, FloatMatmulMatchesReference) {
  std::mt19937 rng(1);
  ThreadPool pool(2);
  for (FloatType t : {FloatType::kF32, FloatType::kBF16, FloatType::kF16})
    for (int64_t cols : {1, 7, 16, 40, 96}) {
      auto m = make_float(13, cols, t, rng);
      for (int64_t n : {1, 3, 9}) check_against_reference(m, n, pool, rng);
    }
}

// Sets the activation mode for one scope.
struct ActivationsScope {
  explicit ActivationsScope(const char* name) { EXPECT_TRUE(force_activations(name)); }
  ~ActivationsScope() { force_activations(""); }
};

TEST(Kernels, AffineMatmulMatchesReference) {
  ActivationsScope f32("f32");
  std::mt19937 rng(2);
  ThreadPool pool(2);
  for (int bits : {2, 3, 4, 5, 6, 8})
    for (int gs : {32, 64, 128})
      for (FloatType t : {FloatType::kBF16, FloatType::kF16, FloatType::kF32}) {
        auto m = make_affine(11, 256, bits, gs, t, rng);
        for (int64_t n : {1, 5}) check_against_reference(m, n, pool, rng);
      }
}

// The int8 path against the float64 product of the exact values, with a
// bound derived from the quantization alone: rounding x to a step d (d =
// max |x| / 127 per group) moves each x by at most d / 2, so a group's sum
// moves by at most d / 2 * sum |s q| (the bias term uses the exact x). Float
// rounding adds kRelTol of the absolute terms as on the f32 path.
TEST(Kernels, Int8AffineMatmulIsWithinItsQuantizationBound) {
  ActivationsScope int8("int8");
  std::mt19937 rng(7);
  ThreadPool pool(2);
  for (int bits : {2, 3, 4, 5, 6, 8})
    for (int gs : {32, 64, 128}) {
      auto m = make_affine(11, 256, bits, gs, FloatType::kBF16, rng);
      const int64_t rows = m.w.rows, cols = m.w.cols, n_tok = 5;
      auto x = random_x(n_tok * cols, rng);
      std::vector<float> y(n_tok * rows);
      matmul(m.w, x.data(), n_tok, y.data(), pool);
      double worst = 0;  // largest error as a fraction of its bound
      for (int64_t t = 0; t < n_tok; ++t)
        for (int64_t r = 0; r < rows; ++r) {
          double ref = 0, mag = 0, bound = 0;
          for (int64_t g = 0; g < cols / gs; ++g) {
            double amax = 0, sq = 0;
            for (int64_t c = g * gs; c < (g + 1) * gs; ++c) {
              amax = std::max(amax, std::fabs(static_cast<double>(x[t * cols + c])));
              const double b = load_float(m.w.biases, m.w.dtype, r * (cols / gs) + g);
              sq += std::fabs(m.dense[r * cols + c] - b);  // |s q|
            }
            bound += amax / 127 / 2 * sq;
          }
          for (int64_t c = 0; c < cols; ++c) {
            ref += static_cast<double>(m.dense[r * cols + c]) * x[t * cols + c];
            mag += std::fabs(static_cast<double>(m.magnitude[r * cols + c]) * x[t * cols + c]);
          }
          const double err = std::fabs(y[t * rows + r] - ref), allowed = bound + kRelTol * mag;
          ASSERT_LE(err, allowed) << m.w.describe() << " row " << r << " token " << t;
          worst = std::max(worst, err / allowed);
        }
      // The error is real (not the float path by mistake) and well inside the
      // worst case, since the rounding errors of a group mostly cancel.
      EXPECT_GT(worst, 0.01) << m.w.describe();
      EXPECT_LT(worst, 0.5) << m.w.describe();
    }
}

// A non-finite activation makes its outputs NaN, as on the float path, rather
// than a silent zero code; other tokens are untouched.
TEST(Kernels, Int8ActivationsPropagateNonFiniteValues) {
  ActivationsScope int8("int8");
  std::mt19937 rng(8);
  ThreadPool pool(1);
  auto m = make_affine(3, 128, 4, 64, FloatType::kBF16, rng);
  auto x = random_x(2 * 128, rng);
  x[70] = std::numeric_limits<float>::infinity();
  std::vector<float> y(2 * 3);
  matmul(m.w, x.data(), 2, y.data(), pool);
  for (int r = 0; r < 3; ++r) {
    EXPECT_TRUE(std::isnan(y[r])) << r;
    EXPECT_TRUE(std::isfinite(y[3 + r])) << r;
  }
}

TEST(Kernels, GatherRowDequantizesExactly) {
  std::mt19937 rng(3);
  for (int bits : {2, 3, 4, 5, 6, 8}) {
    auto m = make_affine(5, 128, bits, 32, FloatType::kBF16, rng);
    std::vector<float> row(128);
    for (int64_t r = 0; r < 5; ++r) {
      gather_row(m.w, r, row.data());
      for (int64_t c = 0; c < 128; ++c) ASSERT_EQ(row[c], m.dense[r * 128 + c]) << bits << " bits";
    }
  }
}

// Runs every product of one matrix three ways that must agree bit for bit:
// token by token (decode), all tokens at once (prefill), with 1 and 3 threads.
void check_bit_identical(const WeightMatrix& w, std::mt19937& rng) {
  const int64_t n_tok = 11;
  auto x = random_x(n_tok * w.cols, rng);
  ThreadPool one(1), three(3);
  std::vector<float> prefill(n_tok * w.rows), prefill3(n_tok * w.rows), decode(n_tok * w.rows);
  matmul(w, x.data(), n_tok, prefill.data(), one);
  matmul(w, x.data(), n_tok, prefill3.data(), three);
  for (int64_t t = 0; t < n_tok; ++t) matmul(w, x.data() + t * w.cols, 1, decode.data() + t * w.rows, three);
  EXPECT_EQ(std::memcmp(prefill.data(), prefill3.data(), prefill.size() * 4), 0) << w.describe();
  EXPECT_EQ(std::memcmp(prefill.data(), decode.data(), prefill.size() * 4), 0) << w.describe();
}

TEST(Kernels, DecodePrefillAndThreadCountsAreBitIdentical) {
  for (const char* mode : {"int8", "f32"}) {
    ActivationsScope scope(mode);
    std::mt19937 rng(4);
    for (FloatType t : {FloatType::kF32, FloatType::kBF16, FloatType::kF16})
      check_bit_identical(make_float(37, 72, t, rng).w, rng);
    for (int bits : {2, 3, 4, 5, 6, 8})
      check_bit_identical(make_affine(37, 192, bits, 64, FloatType::kBF16, rng).w, rng);
  }
}

TEST(Kernels, SimdAndPortableAreBitIdentical) {
  std::mt19937 rng(5);
  ThreadPool pool(2);
  std::vector<TestMatrix> ms;
  ms.push_back(make_float(9, 75, FloatType::kBF16, rng));
  ms.push_back(make_float(9, 64, FloatType::kF16, rng));
  ms.push_back(make_float(9, 33, FloatType::kF32, rng));
  for (int bits : {3, 4, 8}) ms.push_back(make_affine(9, 128, bits, 32, FloatType::kF16, rng));
  for (int bits : {4, 8}) ms.push_back(make_affine(9, 256, bits, 128, FloatType::kBF16, rng));
  // Every implementation this CPU has, against the portable one, for both
  // activation modes: 1 token (decode), 6 and 13 (prefill tiles of 4 and 8
  // tokens plus remainders).
  for (const char* mode : {"int8", "f32"})
    for (const std::string& isa : available_kernel_isas())
      for (const auto& m : ms)
        for (int64_t n : {1, 6, 13}) {
          auto x = random_x(n * m.w.cols, rng);
          std::vector<float> a(n * m.w.rows), b(n * m.w.rows);
          ActivationsScope scope(mode);
          force_portable_kernels(true);
          matmul(m.w, x.data(), n, a.data(), pool);
          ASSERT_TRUE(force_kernel_isa(isa));
          matmul(m.w, x.data(), n, b.data(), pool);
          force_kernel_isa("");
          EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0)
              << m.w.describe() << " n " << n << " isa " << isa << " " << mode;
        }
  auto u = random_x(77, rng), v = random_x(77, rng);
  force_portable_kernels(true);
  float d1 = dot_f32(u.data(), v.data(), 77);
  for (const std::string& isa : available_kernel_isas()) {
    ASSERT_TRUE(force_kernel_isa(isa));
    EXPECT_EQ(d1, dot_f32(u.data(), v.data(), 77)) << isa;
  }
  force_kernel_isa("");
  EXPECT_FALSE(force_kernel_isa("sse9"));
}

// One f16 -> f32 rule everywhere (tensors/dtype.h): a signalling NaN comes
// out quiet with its payload, as F16C converts it, whether a row is read by
// the portable code, by the AVX2 matmul or by an embedding lookup.
TEST(Kernels, SignallingNaNsGiveTheSameBitsOnEveryPath) {
  const uint16_t snan = 0x7C01, neg_snan = 0xFD55;
  EXPECT_EQ(std::bit_cast<uint32_t>(f16_to_f32(snan)), 0x7FC02000u);
  EXPECT_EQ(std::bit_cast<uint32_t>(f16_to_f32(neg_snan)), 0xFFEAA000u);
  std::mt19937 rng(6);
  TestMatrix m = make_float(4, 48, FloatType::kF16, rng);
  std::memcpy(m.data.data() + 2 * 5, &snan, 2);              // row 0
  std::memcpy(m.data.data() + 2 * (48 + 17), &neg_snan, 2);  // row 1
  std::vector<float> x(48, 0.0f);
  x[5] = 1.0f;
  x[17] = 1.0f;
  ThreadPool pool(1);
  std::vector<float> a(4), b(4);
  force_portable_kernels(true);
  matmul(m.w, x.data(), 1, a.data(), pool);
  std::vector<float> row_a(48);
  gather_row(m.w, 0, row_a.data());
  force_portable_kernels(false);
  matmul(m.w, x.data(), 1, b.data(), pool);
  std::vector<float> row_b(48);
  gather_row(m.w, 0, row_b.data());
  EXPECT_TRUE(std::isnan(a[0]) && std::isnan(a[1]));
  EXPECT_EQ(std::memcmp(a.data(), b.data(), 16), 0) << "isa " << kernel_isa();
  EXPECT_EQ(std::bit_cast<uint32_t>(row_a[5]), 0x7FC02000u);
  EXPECT_EQ(std::memcmp(row_a.data(), row_b.data(), 48 * 4), 0);
}

TEST(ThreadPool, CoversEveryIndexOnce) {
  ThreadPool pool(3);
  for (int64_t n : {1, 2, 17, 1000}) {
    std::vector<std::atomic<int>> hits(n);
    for (int rep = 0; rep < 20; ++rep)
      pool.parallel_for(n, 3, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[i]++;
      });
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 20);
  }
}

}  // namespace
}  // namespace mb::inference
