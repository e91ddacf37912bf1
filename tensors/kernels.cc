// The portable kernels (the reference the AVX2 ones must match bit for bit)
// and the run-time choice between them.
#include "tensors/kernels.h"

#include <bit>
#include <cstring>
#include <span>

namespace mb::kernels {

namespace {

void quantize_groups(const float* w, int64_t groups, int gs, int bits, QuantKernel kernel, DType dtype, uint8_t* codes,
                     float* scales, float* biases) {
  const size_t n = static_cast<size_t>(gs);
  for (int64_t g = 0; g < groups; ++g) {
    const GroupParams p = quantize_group(std::span<const float>(w + g * gs, n), bits, kernel, dtype,
                                         std::span<uint8_t>(codes + g * gs, n));
    scales[g] = p.scale;
    biases[g] = p.bias;
  }
}

void dequantize_packed(const std::byte* packed, int bits, int64_t groups, int gs, const float* scales,
                       const float* biases, float* out) {
  const size_t group_bytes = static_cast<size_t>(gs * bits / 8);
  uint8_t codes[128];
  for (int64_t g = 0; g < groups; ++g) {
    unpack_codes(std::span<const std::byte>(packed + g * group_bytes, group_bytes), bits,
                 std::span<uint8_t>(codes, static_cast<size_t>(gs)));
    const float s = scales[g], b = biases[g];
    float* o = out + g * gs;
    for (int j = 0; j < gs; ++j) o[j] = static_cast<float>(codes[j]) * s + b;
  }
}

void lora_delta(const float* coef, const float* a, int64_t rank, int64_t n, float* delta) {
  std::memset(delta, 0, static_cast<size_t>(n) * sizeof(float));
  // One pass over the row per rank: d = d + c·a, two roundings each.
  for (int64_t k = 0; k < rank; ++k) {
    const float c = coef[k];
    const float* ak = a + k * n;
    for (int64_t i = 0; i < n; ++i) delta[i] += c * ak[i];
  }
}

void f16_to_f32_n(const void* in, float* out, int64_t n) {
  const auto* p = static_cast<const std::byte*>(in);
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    out[i] = f16_to_f32(h);
  }
}

void f32_to_f16_n(const float* in, void* out, int64_t n) {
  auto* p = static_cast<std::byte*>(out);
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = f32_to_f16(in[i]);
    std::memcpy(p + 2 * i, &h, 2);
  }
}

void round_f16(const float* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u = std::bit_cast<uint32_t>(in[i]);
    const uint32_t abs = u & 0x7FFFFFFF;
    // Normal f16 results (2^-14 ≤ |v| < 65520): round the 23-bit mantissa
    // to 10 bits, ties to even, as f32_to_f16 does; a carry into the
    // exponent is the correct rounding up. Subnormals, overflow and NaN
    // take the exact scalar path.
    if (abs >= 0x38800000 && abs < 0x477FF000) {
      u += 0xFFF + ((u >> 13) & 1);
      out[i] = std::bit_cast<float>(u & 0xFFFFE000u);
    } else {
      out[i] = f16_to_f32(f32_to_f16(in[i]));
    }
  }
}

void retention_lanes(const float* w0, const float* target, const float* result, int64_t n, double lanes[4][4]) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t l = i & 3;
    // Differences of two floats are exact in double.
    const double delta = static_cast<double>(target[i]) - w0[i];
    const double change = static_cast<double>(result[i]) - w0[i];
    const double error = static_cast<double>(result[i]) - target[i];
    lanes[0][l] += delta * delta;
    lanes[1][l] += error * error;
    lanes[2][l] += change * change;
    lanes[3][l] += change * delta;
  }
}

constexpr Table kPortable = {quantize_groups, dequantize_packed, lora_delta,     f16_to_f32_n,
                             f32_to_f16_n,    round_f16,         retention_lanes};

}  // namespace

const Table& portable_table() { return kPortable; }

const Table& table() {
  static const Table& chosen = avx2_table() ? *avx2_table() : neon_table() ? *neon_table() : kPortable;
  return chosen;
}

const char* isa() {
  if (&table() == &kPortable) return "portable";
  return &table() == neon_table() ? "neon" : "avx2";
}

}  // namespace mb::kernels
