#include "tensors/mlx_quant.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>

namespace mb {
namespace {

using Codes = std::vector<uint8_t>;
using Words = std::vector<uint32_t>;

uint32_t f32_bits(float f) { return std::bit_cast<uint32_t>(f); }

Words words_of(std::span<const std::byte> b) {
  Words w(b.size() / 4);
  std::memcpy(w.data(), b.data(), w.size() * 4);
  return w;
}

Words pack(const Codes& codes, int bits) {
  std::vector<std::byte> out(codes.size() * bits / 8);
  pack_codes(codes, bits, out);
  return words_of(out);
}

// The stored bit pattern of scale/bias element `i` of `dtype`.
uint32_t stored(const std::vector<std::byte>& b, DType dtype, size_t i = 0) {
  if (dtype == DType::kF32) {
    uint32_t u;
    std::memcpy(&u, b.data() + 4 * i, 4);
    return u;
  }
  uint16_t h;
  std::memcpy(&h, b.data() + 2 * i, 2);
  return h;
}

std::vector<std::byte> to_bytes(const std::vector<float>& w, DType dtype) {
  std::vector<std::byte> b(w.size() * dtype_size(dtype));
  EXPECT_TRUE(from_f32(w, dtype, b).ok());
  return b;
}

// Quantizes one 32-value group with bits 4, gs 32 (mlx-quantization.md §5.2).
QuantizedTensor quantize32(const std::vector<float>& w, DType dtype, QuantKernel kernel) {
  std::vector<int64_t> shape = {1, 32};
  auto bytes = to_bytes(w, dtype);
  auto q = quantize_tensor("ex", dtype, shape, bytes, {4, 32, kernel});
  EXPECT_TRUE(q.ok()) << q.error().to_string();
  return q.ok() ? std::move(*q) : QuantizedTensor{};
}

Codes codes_of(const QuantizedTensor& q, int bits = 4) {
  Codes c(q.weight.size() * 8 / bits);
  unpack_codes(q.weight, bits, c);
  return c;
}

std::vector<float> dequantize(const QuantizedTensor& q, int bits = 4, int gs = 32) {
  auto r =
      dequantize_tensor("ex", q.weight_shape, q.weight, q.scales_shape, q.dtype, q.scales, q.biases, bits, gs, nullptr);
  EXPECT_TRUE(r.ok()) << r.error().to_string();
  return r.ok() ? *r : std::vector<float>{};
}

// mlx-quantization.md §5.2 example 1: negative scale; CPU and GPU agree.
TEST(MlxQuant, Example1NegativeScale) {
  std::vector<float> w;
  for (int i = 0; i < 32; ++i) w.push_back(static_cast<float>(i % 16 - 5) * 0.125f);
  Codes want;
  for (int i = 0; i < 32; ++i) want.push_back(static_cast<uint8_t>(15 - i % 16));
  for (QuantKernel k : {QuantKernel::kCpu, QuantKernel::kGpu}) {
    SCOPED_TRACE(quant_kernel_name(k));
    auto q = quantize32(w, DType::kF32, k);
    EXPECT_EQ(codes_of(q), want);
    EXPECT_EQ(words_of(q.weight), (Words{0x89ABCDEF, 0x01234567, 0x89ABCDEF, 0x01234567}));
    EXPECT_EQ(stored(q.scales, DType::kF32), 0xBE000000u);
    EXPECT_EQ(stored(q.biases, DType::kF32), 0x3FA00000u);
    EXPECT_EQ(dequantize(q), w);  // exact
    auto qb = quantize32(w, DType::kBF16, k);
    EXPECT_EQ(codes_of(qb), want);
    EXPECT_EQ(stored(qb.scales, DType::kBF16), 0xBE00u);
    EXPECT_EQ(stored(qb.biases, DType::kBF16), 0x3FA0u);
    EXPECT_EQ(dequantize(qb), w);
  }
  EXPECT_EQ(want[5], 10);  // zero is code 10
}

// mlx-quantization.md §5.2 example 2: exact ties, where rint and round disagree.
TEST(MlxQuant, Example2TiesCpuVersusGpu) {
  std::vector<float> w;
  for (int i = 0; i < 32; ++i) w.push_back(static_cast<float>(i - 20) / 16.0f);
  auto cpu = quantize32(w, DType::kF32, QuantKernel::kCpu);
  EXPECT_EQ(codes_of(cpu), (Codes{0, 0, 1, 2,  2,  2,  3,  4,  4,  4,  5,  6,  6,  6,  7,  8,
                                  8, 8, 9, 10, 10, 10, 11, 12, 12, 12, 13, 14, 14, 14, 15, 15}));
  EXPECT_EQ(words_of(cpu.weight), (Words{0x43222100, 0x87666544, 0xCBAAA988, 0xFFEEEDCC}));
  auto gpu = quantize32(w, DType::kF32, QuantKernel::kGpu);
  EXPECT_EQ(codes_of(gpu), (Codes{0, 1, 1, 2,  2,  3,  3,  4,  4,  5,  5,  6,  6,  7,  7,  8,
                                  8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15, 15}));
  EXPECT_EQ(words_of(gpu.weight), (Words{0x43322110, 0x87766554, 0xCBBAA998, 0xFFFEEDDC}));
  for (const auto* q : {&cpu, &gpu}) {
    EXPECT_EQ(stored(q->scales, DType::kF32), 0x3E000000u);
    EXPECT_EQ(stored(q->biases, DType::kF32), 0xBFA00000u);
    EXPECT_EQ(codes_of(*q)[20], 10);
    EXPECT_EQ(dequantize(*q)[20], 0.0f);
  }
}

// mlx-quantization.md §5.2 example 3: an all-negative group.
TEST(MlxQuant, Example3AllNegativeGroup) {
  std::vector<float> w;
  for (int i = 0; i < 32; ++i) w.push_back(-1.0f + static_cast<float>(i) / 256.0f);

  auto cpu = quantize32(w, DType::kF32, QuantKernel::kCpu);
  Codes cpu_codes;
  for (int i = 0; i < 32; ++i) cpu_codes.push_back(static_cast<uint8_t>(std::rint(i * 124.0 / 256.0)));
  EXPECT_EQ(codes_of(cpu), cpu_codes);
  EXPECT_EQ(codes_of(cpu), (Codes{0, 0, 1, 1, 2,  2,  3,  3,  4,  4,  5,  5,  6,  6,  7,  7,
                                  8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15}));
  EXPECT_EQ(words_of(cpu.weight), (Words{0x33221100, 0x77665544, 0xBBAA9988, 0xFFEEDDCC}));
  EXPECT_EQ(stored(cpu.scales, DType::kF32), 0x3C042108u);
  EXPECT_EQ(stored(cpu.biases, DType::kF32), f32_bits(-1.0f));
  EXPECT_EQ(stored(quantize32(w, DType::kBF16, QuantKernel::kCpu).scales, DType::kBF16), 0x3C04u);

  auto gpu = quantize32(w, DType::kF32, QuantKernel::kGpu);
  Codes gpu_codes(9, 0);
  gpu_codes.insert(gpu_codes.end(), 17, 1);
  gpu_codes.insert(gpu_codes.end(), 6, 2);
  EXPECT_EQ(codes_of(gpu), gpu_codes);
  EXPECT_EQ(words_of(gpu.weight), (Words{0x00000000, 0x11111110, 0x11111111, 0x22222211}));
  EXPECT_EQ(stored(gpu.scales, DType::kF32), 0x3D888889u);
  EXPECT_EQ(stored(gpu.biases, DType::kF32), f32_bits(-1.0f));
  EXPECT_EQ(stored(quantize32(w, DType::kBF16, QuantKernel::kGpu).scales, DType::kBF16), 0x3D89u);
}

// mlx-quantization.md §5.2 example 4: constant groups.
TEST(MlxQuant, Example4ConstantGroups) {
  for (QuantKernel k : {QuantKernel::kCpu, QuantKernel::kGpu}) {
    SCOPED_TRACE(quant_kernel_name(k));
    std::vector<float> w(32, 0.3f);
    auto f = quantize32(w, DType::kF32, k);
    EXPECT_EQ(stored(f.scales, DType::kF32), 0xB3D6BF95u);
    EXPECT_EQ(stored(f.biases, DType::kF32), 0x3E99999Au);
    EXPECT_EQ(codes_of(f), Codes(32, 0));
    EXPECT_EQ(dequantize(f), w);

    std::vector<float> wb(32, bf16_to_f32(0x3E9A));
    auto gp = quantize_group(wb, 4, k, DType::kBF16, std::span<uint8_t>(Codes(32).data(), 32));
    if (k == QuantKernel::kCpu) {
      EXPECT_FLOAT_EQ(gp.scale, -1.00000015e-7f);
    } else {
      // edge/scale is -3007812.5 here: rint picks -3007812, round() picks
      // -3007813, so the GPU's f32 scale differs (the bf16 one does not).
      EXPECT_EQ(0.30078125f / -1e-7f, -3007812.5f);
      EXPECT_EQ(gp.scale, 0.30078125f / -3007813.0f);
    }
    auto b = quantize32(wb, DType::kBF16, k);
    EXPECT_EQ(stored(b.scales, DType::kBF16), 0xB3D7u);
    EXPECT_EQ(stored(b.biases, DType::kBF16), 0x3E9Au);
    EXPECT_EQ(codes_of(b), Codes(32, 0));
    EXPECT_EQ(dequantize(b), wb);

    std::vector<float> wh(32, round_to_dtype(0.3f, DType::kF16));
    EXPECT_FLOAT_EQ(wh[0], 0.300048828f);
    auto h = quantize32(wh, DType::kF16, k);
    EXPECT_EQ(stored(h.scales, DType::kF16), 0x8002u);
    EXPECT_EQ(stored(h.biases, DType::kF16), 0x34CDu);
    EXPECT_EQ(dequantize(h), wh);

    std::vector<float> zero(32, 0.0f);
    for (DType d : {DType::kF32, DType::kBF16, DType::kF16}) {
      auto z = quantize32(zero, d, k);
      uint32_t want = d == DType::kF32 ? 0xB3D6BF95u : d == DType::kBF16 ? 0xB3D7u : 0x8002u;
      EXPECT_EQ(stored(z.scales, d), want) << dtype_name(d);
      EXPECT_EQ(stored(z.biases, d), 0u) << dtype_name(d);
      EXPECT_EQ(codes_of(z), Codes(32, 0));
      EXPECT_EQ(dequantize(z), zero);
    }
  }
}

// mlx-quantization.md §5.2 example 5: scale rounding in bf16 and f16, CPU dequantization.
TEST(MlxQuant, Example5ScaleRoundingAndDequantization) {
  std::vector<float> w;
  for (int i = 0; i < 32; ++i) w.push_back(std::min(-1.0f + static_cast<float>(i) / 16.0f, 0.5f));
  GroupParams p = quantize_group(w, 4, QuantKernel::kCpu, DType::kF32, std::span<uint8_t>(Codes(32).data(), 32));
  EXPECT_EQ(f32_bits(p.scale), 0x3DCCCCCDu);
  EXPECT_EQ(p.bias, -1.0f);
  EXPECT_EQ(std::rint(0.25f / p.scale), 2.0f);  // 2.4999999627, not a tie

  const Codes want = {0,  1,  1,  2,  2,  3,  4,  4,  5,  6,  6,  7,  8,  8,  9,  9,
                      10, 11, 11, 12, 12, 13, 14, 14, 15, 15, 15, 15, 15, 15, 15, 15};
  struct Case {
    DType dtype;
    uint32_t scale, bias;
  };
  for (Case c : {Case{DType::kF32, 0x3DCCCCCD, 0xBF800000}, Case{DType::kBF16, 0x3DCD, 0xBF80},
                 Case{DType::kF16, 0x2E66, 0xBC00}}) {
    SCOPED_TRACE(dtype_name(c.dtype));
    auto q = quantize32(w, c.dtype, QuantKernel::kCpu);
    EXPECT_EQ(codes_of(q), want);
    EXPECT_EQ(words_of(q.weight), (Words{0x44322110, 0x99887665, 0xEEDCCBBA, 0xFFFFFFFF}));
    EXPECT_EQ(stored(q.scales, c.dtype), c.scale);
    EXPECT_EQ(stored(q.biases, c.dtype), c.bias);
  }

  // Dequantize codes 0..15 (twice, to fill a 32-group) with the stored params.
  Codes ramp;
  for (int i = 0; i < 32; ++i) ramp.push_back(static_cast<uint8_t>(i % 16));
  std::vector<std::byte> packed(16);
  pack_codes(ramp, 4, packed);
  auto dequant = [&](DType d, uint16_t s, uint16_t b) {
    std::vector<float> out(32);
    Status st = dequantize_rows("ex5", packed, std::as_bytes(std::span(&s, 1)), std::as_bytes(std::span(&b, 1)), d, 32,
                                4, 32, out);
    EXPECT_TRUE(st.ok());
    return out;
  };
  const float bf16_want[16] = {-1,         -0.8984375,  -0.80078125, -0.69921875, -0.6015625, -0.5,
                               -0.3984375, -0.30078125, -0.19921875, -0.09765625, 0,          0.1015625,
                               0.203125,   0.3046875,   0.3984375,   0.5};
  auto bf = dequant(DType::kBF16, 0x3DCD, 0xBF80);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(bf[i], bf16_want[i % 16]) << i;
  const float f16_want[16] = {-1,   -0.899902344, -0.799804688, -0.700195312, -0.600097656,
                              -0.5, -0.400390625, -0.300292969, -0.200195312, -0.100097656,
                              0,    0.099609375,  0.19921875,   0.299804688,  0.399414062,
                              0.5};
  auto hf = dequant(DType::kF16, 0x2E66, 0xBC00);
  // The spec rounds to 9 digits; the nearest f16 of each is the exact value.
  for (int i = 0; i < 32; ++i) EXPECT_EQ(hf[i], round_to_dtype(f16_want[i % 16], DType::kF16)) << i;
}

// mlx-quantization.md §5.1: q_i = i mod 2^b, 32 codes per bit width.
TEST(MlxQuant, PackingTable) {
  auto ramp = [](int bits) {
    Codes c;
    for (int i = 0; i < 32; ++i) c.push_back(static_cast<uint8_t>(i % (1 << bits)));
    return c;
  };
  EXPECT_EQ(pack(ramp(2), 2), (Words{0xE4E4E4E4, 0xE4E4E4E4}));
  EXPECT_EQ(pack(ramp(3), 3), (Words{0x88FAC688, 0xC688FAC6, 0xFAC688FA}));
  EXPECT_EQ(pack(ramp(4), 4), (Words{0x76543210, 0xFEDCBA98, 0x76543210, 0xFEDCBA98}));
  EXPECT_EQ(pack(ramp(5), 5), (Words{0x8A418820, 0xC5A92839, 0xCA307B9A, 0x38BDAB49, 0xFFBBCDEB}));
  EXPECT_EQ(pack(ramp(6), 6), (Words{0x440C2040, 0xA2481C61, 0x3CE34C2C, 0x544D2450, 0xA6585D65, 0x7DE75C6D}));
  Words eight;
  for (uint32_t k = 0; k < 32; k += 4) eight.push_back(k | (k + 1) << 8 | (k + 2) << 16 | (k + 3) << 24);
  EXPECT_EQ(eight.front(), 0x03020100u);
  EXPECT_EQ(eight.back(), 0x1F1E1D1Cu);
  EXPECT_EQ(pack(ramp(8), 8), eight);
  for (int bits : {2, 3, 4, 5, 6, 8}) {
    std::vector<std::byte> packed(32 * bits / 8);
    pack_codes(ramp(bits), bits, packed);
    Codes back(32);
    unpack_codes(packed, bits, back);
    EXPECT_EQ(back, ramp(bits)) << bits;
  }
}

// mlx-quantization.md §4: in 3-bit packing, code 10 spans bits 30..31 of word 0 and bit 0 of word 1.
TEST(MlxQuant, ThreeBitCodesStraddleWords) {
  Codes c(32, 0);
  c[10] = 7;
  EXPECT_EQ(pack(c, 3), (Words{0xC0000000, 0x00000001, 0}));
}

TEST(MlxQuant, UnpackInvertsPackForRandomCodes) {
  std::mt19937 rng(3);
  for (int bits : {2, 3, 4, 5, 6, 8}) {
    for (size_t n : {8u, 32u, 96u, 1024u}) {
      Codes c(n);
      for (auto& x : c) x = static_cast<uint8_t>(rng() & ((1u << bits) - 1));
      std::vector<std::byte> packed(n * bits / 8);
      pack_codes(c, bits, packed);
      Codes back(n);
      unpack_codes(packed, bits, back);
      ASSERT_EQ(back, c) << bits << " " << n;
    }
  }
}

TEST(MlxQuant, Shapes) {
  // mlx-quantization.md §1 for in = 4096, and mlx-lm-layout.md §1's Llama-3.2-1B examples.
  const std::pair<int, int64_t> table[] = {{2, 256}, {3, 384}, {4, 512}, {5, 640}, {6, 768}, {8, 1024}};
  for (auto [bits, cols] : table)
    EXPECT_EQ(packed_shape(std::vector<int64_t>{7, 4096}, bits), (std::vector<int64_t>{7, cols}));
  std::vector<int64_t> down = {2048, 8192};
  EXPECT_EQ(packed_shape(down, 4), (std::vector<int64_t>{2048, 1024}));
  EXPECT_EQ(scales_shape(down, 64), (std::vector<int64_t>{2048, 128}));
  std::vector<int64_t> experts = {8, 16, 256};
  EXPECT_EQ(packed_shape(experts, 3), (std::vector<int64_t>{8, 16, 24}));
  EXPECT_EQ(scales_shape(experts, 32), (std::vector<int64_t>{8, 16, 8}));

  auto s = dequantized_shape("q", std::vector<int64_t>{2048, 256}, std::vector<int64_t>{2048, 32}, 4, 64);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, (std::vector<int64_t>{2048, 2048}));
  auto bad = dequantized_shape("q", std::vector<int64_t>{2048, 256}, std::vector<int64_t>{2048, 16}, 4, 64);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().where, "q");
  EXPECT_FALSE(dequantized_shape("q", std::vector<int64_t>{2048, 256}, std::vector<int64_t>{1024, 32}, 4, 64).ok());
  EXPECT_FALSE(dequantized_shape("q", std::vector<int64_t>{2048, 7}, std::vector<int64_t>{2048, 1}, 3, 32).ok());
}

TEST(MlxQuant, ValidationErrorsNameTheTensor) {
  for (int bits : {0, 1, 7, 9, 16}) {
    Status st = check_quant_params(bits, 64, "model.x.weight");
    ASSERT_FALSE(st.ok()) << bits;
    EXPECT_EQ(st.error().code, Errc::kInvalidInput);
    EXPECT_EQ(st.error().where, "model.x.weight");
  }
  for (int gs : {0, 16, 48, 256}) EXPECT_FALSE(check_quant_params(4, gs, "w").ok()) << gs;
  for (int bits : {2, 3, 4, 5, 6, 8})
    for (int gs : {32, 64, 128}) EXPECT_TRUE(check_quant_params(bits, gs, "w").ok());

  std::vector<int64_t> shape = {4, 96};
  Status st = check_quantizable("model.layers.0.mlp.up_proj.weight", DType::kBF16, shape, {4, 64});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().where, "model.layers.0.mlp.up_proj.weight");
  EXPECT_NE(st.error().message.find("not divisible by group size 64"), std::string::npos);
  EXPECT_TRUE(check_quantizable("w", DType::kBF16, shape, {4, 32}).ok());
  st = check_quantizable("w", DType::kU32, shape, {4, 32});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kUnsupported);
  EXPECT_FALSE(check_quantizable("w", DType::kF32, std::vector<int64_t>{}, {4, 32}).ok());

  std::vector<float> w(64);
  std::vector<std::byte> packed(32), scales(4), biases(4);
  EXPECT_TRUE(quantize_rows("w", w, 64, DType::kF32, {4, 64}, packed, scales, biases).ok());
  EXPECT_FALSE(quantize_rows("w", w, 64, DType::kF32, {4, 64}, std::span(packed).first(31), scales, biases).ok());
  EXPECT_FALSE(quantize_rows("w", w, 48, DType::kF32, {4, 32}, packed, scales, biases).ok());
  auto q =
      quantize_tensor("t", DType::kF32, std::vector<int64_t>{1, 64}, std::as_bytes(std::span(w)).first(10), {4, 64});
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().where, "t");
}

// Every bits x group size x dtype x kernel. A value inside the range the
// codes can reach, [bias, bias + n_bins*scale], comes back within half a step
// plus the dtype's rounding of scale, bias and result. The edge trick can
// shrink the step so that the far end of a group falls outside that range
// (mlx-quantization.md §5.2 example 2 clamps 15.5 to 15); such values come back as
// the nearest end, and every value stays within one full step.
TEST(MlxQuant, RoundTripErrorIsBounded) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  const int64_t rows = 6, cols = 256;
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    std::vector<float> w(static_cast<size_t>(rows * cols));
    for (size_t i = 0; i < w.size(); ++i) {
      int64_t row = static_cast<int64_t>(i) / cols;
      float v = normal(rng);
      if (row == 1) v = -std::fabs(v) - 0.01f;  // all negative
      if (row == 2) v = std::fabs(v) + 0.01f;   // all positive
      if (row == 3) v = 0.125f;                 // constant
      if (row == 4) v *= 100.0f;                // wide range
      w[i] = round_to_dtype(v, dtype);
    }
    const float u = dtype == DType::kF32 ? 0x1p-23f : dtype == DType::kF16 ? 0x1p-10f : 0x1p-7f;
    const float tiny = dtype == DType::kF16 ? 0x1p-24f : 0.0f;  // f16 subnormal spacing
    auto bytes = to_bytes(w, dtype);
    std::vector<int64_t> shape = {rows, cols};
    size_t clamped = 0;
    for (QuantKernel kernel : {QuantKernel::kCpu, QuantKernel::kGpu}) {
      for (int bits : {2, 3, 4, 5, 6, 8}) {
        for (int gs : {32, 64, 128}) {
          SCOPED_TRACE(fmt::format("{} {} bits={} gs={}", dtype_name(dtype), quant_kernel_name(kernel), bits, gs));
          auto q = quantize_tensor("w", dtype, shape, bytes, {bits, gs, kernel});
          ASSERT_TRUE(q.ok()) << q.error().to_string();
          std::vector<int64_t> out_shape;
          auto back = dequantize_tensor("w", q->weight_shape, q->weight, q->scales_shape, dtype, q->scales, q->biases,
                                        bits, gs, &out_shape);
          ASSERT_TRUE(back.ok()) << back.error().to_string();
          ASSERT_EQ(out_shape, shape);
          std::vector<float> scales(w.size() / gs), biases(w.size() / gs);
          ASSERT_TRUE(to_f32(dtype, q->scales, scales).ok());
          ASSERT_TRUE(to_f32(dtype, q->biases, biases).ok());
          const float n_bins = static_cast<float>((1 << bits) - 1);
          for (size_t i = 0; i < w.size(); ++i) {
            const float s = scales[i / gs], b = biases[i / gs];
            const float slack = 2 * u * (n_bins * std::fabs(s) + std::fabs(b) + std::fabs(w[i])) + tiny;
            const float lo = std::min(b, b + n_bins * s), hi = std::max(b, b + n_bins * s);
            const float err = std::fabs((*back)[i] - w[i]);
            ASSERT_LE(err, std::fabs(s) * (1 + 2 * u) + slack) << i << " w=" << w[i] << " got " << (*back)[i];
            if (w[i] >= lo && w[i] <= hi) {
              ASSERT_LE(err, 0.5f * std::fabs(s) * (1 + 2 * u) + slack) << i << " w=" << w[i] << " got " << (*back)[i];
            } else {
              ++clamped;
              const float nearest = w[i] < lo ? lo : hi;
              ASSERT_LE(std::fabs((*back)[i] - nearest), slack) << i << " w=" << w[i] << " got " << (*back)[i];
            }
          }
        }
      }
    }
    EXPECT_GT(clamped, 0u) << "the data should exercise the clamped case";
  }
}

// Rows are independent, so quantizing row ranges separately (as parallel
// callers do) gives the same bytes as quantizing the whole tensor.
TEST(MlxQuant, RowRangesMatchWholeTensor) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uni(-1, 1);
  const int64_t rows = 8, cols = 192;
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (float& v : w) v = round_to_dtype(uni(rng), DType::kBF16);
  QuantParams p{3, 64, QuantKernel::kGpu};
  auto whole = quantize_tensor("w", DType::kBF16, std::vector<int64_t>{rows, cols}, to_bytes(w, DType::kBF16), p);
  ASSERT_TRUE(whole.ok());
  const size_t packed_row = cols * 3 / 8, param_row = cols / 64 * 2;
  std::vector<std::byte> packed(whole->weight.size()), scales(whole->scales.size()), biases(whole->biases.size());
  for (int64_t r0 = 0; r0 < rows; r0 += 3) {
    int64_t n = std::min<int64_t>(3, rows - r0);
    ASSERT_TRUE(quantize_rows("w", std::span(w).subspan(r0 * cols, n * cols), cols, DType::kBF16, p,
                              std::span(packed).subspan(r0 * packed_row, n * packed_row),
                              std::span(scales).subspan(r0 * param_row, n * param_row),
                              std::span(biases).subspan(r0 * param_row, n * param_row))
                    .ok());
  }
  EXPECT_EQ(packed, whole->weight);
  EXPECT_EQ(scales, whole->scales);
  EXPECT_EQ(biases, whole->biases);
}

}  // namespace
}  // namespace mb
