// Each vector table this CPU has (AVX2, NEON) against the portable kernels,
// bit for bit, on random values and on the values where vector code most
// easily drifts: NaN, ±inf, ±0, subnormals, the f16 rounding boundaries,
// exact ties of the quantizers, all-negative and constant groups. On a CPU
// with neither, only the dispatch test runs (the portable kernels are the
// reference, and the other test files exercise them).
#include "tensors/kernels.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace mb::kernels {
namespace {

struct NamedTable {
  const char* name;
  const Table* table;
};

void PrintTo(const NamedTable& t, std::ostream* os) { *os << t.name; }

// The vector tables present on this CPU and build.
std::vector<NamedTable> vector_tables() {
  std::vector<NamedTable> out;
  if (avx2_table() != nullptr) out.push_back({"avx2", avx2_table()});
  if (neon_table() != nullptr) out.push_back({"neon", neon_table()});
  return out;
}

class KernelsTest : public ::testing::TestWithParam<NamedTable> {
 protected:
  const Table& p = portable_table();
  const Table& v = *GetParam().table;
};

uint32_t bits_of(float f) { return std::bit_cast<uint32_t>(f); }

// Bitwise equality of float arrays (so NaN == NaN and +0 != -0).
::testing::AssertionResult same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << "sizes " << a.size() << " vs " << b.size();
  for (size_t i = 0; i < a.size(); ++i)
    if (bits_of(a[i]) != bits_of(b[i]))
      return ::testing::AssertionFailure() << "element " << i << ": 0x" << std::hex << bits_of(a[i]) << " vs 0x"
                                           << bits_of(b[i]) << std::dec << " (" << a[i] << " vs " << b[i] << ")";
  return ::testing::AssertionSuccess();
}

const float kInf = std::numeric_limits<float>::infinity();
const float kNan = std::numeric_limits<float>::quiet_NaN();

// Values that stress conversions: specials, f16 subnormal and overflow
// boundaries, halfway cases of the f16 mantissa, f32 subnormals.
std::vector<float> special_values() {
  std::vector<float> s = {0.0f,
                          -0.0f,
                          kInf,
                          -kInf,
                          kNan,
                          -kNan,
                          std::bit_cast<float>(0x7F800001u),  // signalling NaN
                          std::bit_cast<float>(0xFFA00000u),  // negative NaN with a payload
                          65504.0f,
                          65519.99f,
                          65520.0f,
                          -65520.0f,
                          1e10f,
                          std::ldexp(1.0f, -14),
                          std::ldexp(1.0f, -24),
                          std::ldexp(1.0f, -25),
                          std::ldexp(1.5f, -25),
                          std::ldexp(1.0f, -26),
                          std::ldexp(1.0f, -149),
                          std::ldexp(3.0f, -130),
                          1.0f + std::ldexp(1.0f, -11),  // halfway: ties to even
                          1.0f + 3 * std::ldexp(1.0f, -11),
                          0.1f,
                          -0.1f,
                          1.0f / 3.0f};
  return s;
}

std::vector<float> random_values(size_t n, float amp, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-amp, amp);
  std::vector<float> out(n);
  for (float& x : out) x = d(rng);
  return out;
}

TEST_P(KernelsTest, F16ConversionsMatchOnEveryHalfAndSpecialFloats) {
  // Every one of the 65536 binary16 patterns, to f32 and back.
  std::vector<uint16_t> halves(65536);
  for (size_t i = 0; i < halves.size(); ++i) halves[i] = static_cast<uint16_t>(i);
  std::vector<float> a(halves.size()), b(halves.size());
  p.f16_to_f32(halves.data(), a.data(), static_cast<int64_t>(halves.size()));
  v.f16_to_f32(halves.data(), b.data(), static_cast<int64_t>(halves.size()));
  EXPECT_TRUE(same_bits(a, b));

  std::vector<float> f = special_values();
  for (float x : random_values(4099, 70000.0f, 1)) f.push_back(x);
  for (float x : random_values(1000, 1e-4f, 2)) f.push_back(x);  // f16 subnormals
  for (uint32_t u = 0x38800000u - 4096; u < 0x38800000u + 4096; ++u) f.push_back(std::bit_cast<float>(u));
  std::vector<uint16_t> ha(f.size()), hb(f.size());
  p.f32_to_f16(f.data(), ha.data(), static_cast<int64_t>(f.size()));
  v.f32_to_f16(f.data(), hb.data(), static_cast<int64_t>(f.size()));
  for (size_t i = 0; i < f.size(); ++i) ASSERT_EQ(ha[i], hb[i]) << "f32 0x" << std::hex << bits_of(f[i]);

  std::vector<float> ra = f, rb(f.size());
  p.round_f16(ra.data(), ra.data(), static_cast<int64_t>(ra.size()));  // in place
  v.round_f16(f.data(), rb.data(), static_cast<int64_t>(rb.size()));   // out of place
  EXPECT_TRUE(same_bits(ra, rb));
}

TEST_P(KernelsTest, F16ConversionsAcceptUnalignedBytes) {
  std::vector<float> f = random_values(37, 10.0f, 3);
  std::vector<std::byte> buf(2 * f.size() + 1), ref(2 * f.size());
  v.f32_to_f16(f.data(), buf.data() + 1, static_cast<int64_t>(f.size()));
  p.f32_to_f16(f.data(), ref.data(), static_cast<int64_t>(f.size()));
  EXPECT_EQ(0, std::memcmp(buf.data() + 1, ref.data(), ref.size()));
  std::vector<float> a(f.size()), b(f.size());
  v.f16_to_f32(buf.data() + 1, a.data(), static_cast<int64_t>(f.size()));
  p.f16_to_f32(ref.data(), b.data(), static_cast<int64_t>(f.size()));
  EXPECT_TRUE(same_bits(a, b));
}

// Groups built to hit every branch of the quantizers.
std::vector<float> quantizer_inputs(int gs) {
  std::vector<float> w;
  auto group = [&](auto fn) {
    for (int i = 0; i < gs; ++i) w.push_back(fn(i));
  };
  group([](int i) { return (i - 20) / 16.0f; });           // mlx-quantization.md §5.2 ex. 2: ties
  group([](int i) { return -1.0f + i / 512.0f; });         // all negative
  group([](int) { return 0.25f; });                        // constant
  group([](int) { return 0.0f; });                         // zeros
  group([](int i) { return i % 2 ? 0.0f : -0.0f; });       // signed zeros
  group([](int i) { return i % 3 ? -0.0f : -2.0f; });      // negative with -0 as the max
  group([](int i) { return i == 5 ? kNan : i * 0.01f; });  // a NaN weight
  group([](int i) { return i == 7 ? kInf : -i * 0.01f; });
  group([](int i) { return i == 9 ? -kInf : i * 0.01f; });
  group([](int) { return kInf; });  // max - min is NaN on the CPU path
  group([](int) { return -kInf; });
  group([](int) { return kNan; });
  group([](int i) { return std::ldexp(static_cast<float>(i), -140); });  // f32 subnormals
  group([](int i) { return 3e38f * ((i % 5) - 2) / 2.0f; });             // near float max
  for (float x : random_values(static_cast<size_t>(gs) * 200, 0.05f, 4)) w.push_back(x);
  for (float x : random_values(static_cast<size_t>(gs) * 20, 6e4f, 5)) w.push_back(x);
  return w;
}

TEST_P(KernelsTest, QuantizeGroupsMatchForEveryBitsGroupSizeAndKernel) {
  for (int gs : {32, 64, 128}) {
    const std::vector<float> w = quantizer_inputs(gs);
    const int64_t groups = static_cast<int64_t>(w.size()) / gs;
    for (int bits : {2, 3, 4, 5, 6, 8})
      for (QuantKernel kernel : {QuantKernel::kCpu, QuantKernel::kGpu})
        for (DType dtype : {DType::kF16, DType::kBF16, DType::kF32}) {
          SCOPED_TRACE(::testing::Message() << "gs " << gs << " bits " << bits << " " << quant_kernel_name(kernel)
                                            << " " << dtype_name(dtype));
          std::vector<uint8_t> ca(w.size()), cb(w.size());
          std::vector<float> sa(groups), sb(groups), ba(groups), bb(groups);
          p.quantize_groups(w.data(), groups, gs, bits, kernel, dtype, ca.data(), sa.data(), ba.data());
          v.quantize_groups(w.data(), groups, gs, bits, kernel, dtype, cb.data(), sb.data(), bb.data());
          ASSERT_EQ(ca, cb);
          ASSERT_TRUE(same_bits(sa, sb));
          ASSERT_TRUE(same_bits(ba, bb));
        }
  }
}

TEST_P(KernelsTest, QuantizeGroupsGiveTheWorkedExampleCodes) {
  // mlx-quantization.md §5.2 example 2 through the dispatched kernel: CPU and GPU
  // codes differ exactly at the ties.
  std::vector<float> w(32);
  for (int i = 0; i < 32; ++i) w[i] = (i - 20) / 16.0f;
  std::vector<uint8_t> c(32);
  float s, b;
  table().quantize_groups(w.data(), 1, 32, 4, QuantKernel::kCpu, DType::kF32, c.data(), &s, &b);
  const std::vector<uint8_t> cpu = {0, 0, 1, 2,  2,  2,  3,  4,  4,  4,  5,  6,  6,  6,  7,  8,
                                    8, 8, 9, 10, 10, 10, 11, 12, 12, 12, 13, 14, 14, 14, 15, 15};
  EXPECT_EQ(c, cpu);
}

TEST_P(KernelsTest, DequantizePackedMatchesForEveryBitsAndGroupSize) {
  for (int gs : {32, 64, 128})
    for (int bits : {2, 3, 4, 5, 6, 8}) {
      const int64_t groups = 50;
      std::vector<std::byte> packed(static_cast<size_t>(groups * gs * bits / 8));
      std::mt19937 rng(6);
      for (std::byte& c : packed) c = static_cast<std::byte>(rng());
      std::vector<float> s = random_values(groups, 0.01f, 7), b = random_values(groups, 1.0f, 8);
      s[3] = -0.0f, b[4] = kNan, s[5] = kInf;
      std::vector<float> a(static_cast<size_t>(groups * gs)), o(a.size());
      p.dequantize_packed(packed.data(), bits, groups, gs, s.data(), b.data(), a.data());
      v.dequantize_packed(packed.data(), bits, groups, gs, s.data(), b.data(), o.data());
      EXPECT_TRUE(same_bits(a, o)) << "gs " << gs << " bits " << bits;
      // And the codes are the bitstream's: group 0's first value.
      std::vector<uint8_t> codes(static_cast<size_t>(gs));
      unpack_codes(std::span<const std::byte>(packed.data(), static_cast<size_t>(gs * bits / 8)), bits, codes);
      EXPECT_EQ(bits_of(o[1]), bits_of(static_cast<float>(codes[1]) * s[0] + b[0]));
    }
}

TEST_P(KernelsTest, LoraDeltaMatchesForEveryTailLength) {
  for (int64_t rank : {1, 8, 16, 70})
    for (int64_t n : {1, 7, 8, 31, 32, 33, 896, 903}) {
      std::vector<float> coef = random_values(static_cast<size_t>(rank), 0.5f, 9);
      std::vector<float> a = random_values(static_cast<size_t>(rank * n), 0.02f, 10);
      if (rank * n > 3) a[3] = -0.0f;
      coef[0] = -0.0f;  // 0 + (-0·x) must stay the portable code's +0
      std::vector<float> da(static_cast<size_t>(n)), db(static_cast<size_t>(n), 123.0f);
      p.lora_delta(coef.data(), a.data(), rank, n, da.data());
      v.lora_delta(coef.data(), a.data(), rank, n, db.data());
      EXPECT_TRUE(same_bits(da, db)) << "rank " << rank << " n " << n;
    }
}

TEST_P(KernelsTest, RetentionLanesMatchAndAccumulate) {
  for (int64_t n : {1, 3, 4, 5, 896, 4099}) {
    std::vector<float> w0 = random_values(static_cast<size_t>(n), 0.05f, 11);
    std::vector<float> t = w0, r = w0;
    std::vector<float> d = random_values(static_cast<size_t>(n), 0.001f, 12),
                       e = random_values(static_cast<size_t>(n), 0.0004f, 13);
    for (int64_t i = 0; i < n; ++i) t[i] += d[i], r[i] = t[i] + e[i];
    double la[4][4], lb[4][4];
    for (int q = 0; q < 4; ++q)
      for (int l = 0; l < 4; ++l) la[q][l] = lb[q][l] = 0.5 * (q + l);  // adds to what is there
    p.retention_lanes(w0.data(), t.data(), r.data(), n, la);
    v.retention_lanes(w0.data(), t.data(), r.data(), n, lb);
    for (int q = 0; q < 4; ++q)
      for (int l = 0; l < 4; ++l)
        EXPECT_EQ(std::bit_cast<uint64_t>(la[q][l]), std::bit_cast<uint64_t>(lb[q][l])) << "n " << n << " q " << q;
  }
}

INSTANTIATE_TEST_SUITE_P(VectorTables, KernelsTest, ::testing::ValuesIn(vector_tables()),
                         [](const ::testing::TestParamInfo<NamedTable>& info) { return info.param.name; });
// A CPU with no vector table instantiates nothing; the dispatch test below
// still checks that the portable kernels are chosen.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(KernelsTest);

TEST(Kernels, TheDispatchPicksTheVectorTableTheCpuHas) {
  const std::vector<NamedTable> tables = vector_tables();
  EXPECT_EQ(&table(), tables.empty() ? &portable_table() : tables.front().table);
  EXPECT_STREQ(isa(), tables.empty() ? "portable" : tables.front().name);
#if defined(__aarch64__)
  EXPECT_STREQ(isa(), "neon");
#endif
}

}  // namespace
}  // namespace mb::kernels
