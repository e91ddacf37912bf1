// NEON kernels for aarch64: 4 floats per register, each lane doing exactly
// the portable kernel's operations on its element (see kernels.h). No FMA:
// only separate vmulq/vaddq are used, and the top-level CMakeLists.txt
// compiles everything with -ffp-contract=off so the compiler cannot fuse them.
// NEON (with its f16 conversions) is part of every aarch64 CPU, so the table
// needs no run-time feature check there.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "tensors/kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

namespace mb::kernels {
namespace {

// round_half_away of mlx_quant.cc, lane by lane: truncate, then step by one
// when the remainder reaches ±0.5. For |x| ≥ 2^23, ±inf and NaN the
// remainder is 0 or NaN, so x comes back unchanged, as in the scalar code.
// Only the sign of a zero can differ (trunc(-0.3) is -0), which the clamp
// below erases.
inline float32x4_t round_code(float32x4_t x, bool cpu) {
  if (cpu) return vrndnq_f32(x);  // ties to even, as std::rint
  const float32x4_t one = vdupq_n_f32(1.0f);
  float32x4_t r = vrndq_f32(x);
  const float32x4_t d = vsubq_f32(x, r);
  r = vaddq_f32(r, vreinterpretq_f32_u32(vandq_u32(vcgeq_f32(d, vdupq_n_f32(0.5f)), vreinterpretq_u32_f32(one))));
  r = vsubq_f32(r, vreinterpretq_f32_u32(vandq_u32(vcleq_f32(d, vdupq_n_f32(-0.5f)), vreinterpretq_u32_f32(one))));
  return r;
}

inline float round_code1(float x, bool cpu) { return vgetq_lane_f32(round_code(vdupq_n_f32(x), cpu), 0); }

// mlx_quant.cc's group_params, the same scalar operations in the same order.
void group_params(float w_min, float w_max, int bits, bool cpu, float* scale_out, float* bias_out) {
  const float n_bins = static_cast<float>((1 << bits) - 1);
  const bool mask = std::fabs(w_min) > std::fabs(w_max);
  float scale = std::max((w_max - w_min) / n_bins, 1e-7f);
  scale = mask ? scale : -scale;
  const float edge = mask ? w_min : w_max;
  const float q0 = round_code1(edge / scale, cpu);
  *scale_out = q0 != 0.0f ? edge / q0 : scale;
  *bias_out = q0 != 0.0f ? edge : 0.0f;
}

void quantize_groups(const float* w, int64_t groups, int gs, int bits, QuantKernel kernel, DType dtype, uint8_t* codes,
                     float* scales, float* biases) {
  const bool cpu = kernel == QuantKernel::kCpu;
  const float init_min = cpu ? std::numeric_limits<float>::infinity() : gpu_initial_min(dtype);
  const float init_max = cpu ? -std::numeric_limits<float>::infinity() : 0.0f;
  const float32x4_t zero = vdupq_n_f32(0.0f), top = vdupq_n_f32(static_cast<float>((1 << bits) - 1));
  for (int64_t g = 0; g < groups; ++g) {
    const float* p = w + g * gs;
    // acc < v ? v : acc and v < acc ? v : acc, std::max/min's selections, so
    // a NaN weight never wins. With no NaN in the lanes, the reduction order
    // can only change the sign of a zero, which group_params never observes.
    float32x4_t mx = vdupq_n_f32(init_max), mn = vdupq_n_f32(init_min);
    for (int i = 0; i < gs; i += 4) {
      const float32x4_t v = vld1q_f32(p + i);
      mx = vbslq_f32(vcltq_f32(mx, v), v, mx);
      mn = vbslq_f32(vcltq_f32(v, mn), v, mn);
    }
    group_params(vminvq_f32(mn), vmaxvq_f32(mx), bits, cpu, &scales[g], &biases[g]);
    const float32x4_t s = vdupq_n_f32(scales[g]), b = vdupq_n_f32(biases[g]);
    for (int i = 0; i < gs; i += 4) {
      float32x4_t q = round_code(vdivq_f32(vsubq_f32(vld1q_f32(p + i), b), s), cpu);
      q = vbslq_f32(vcgtq_f32(q, zero), q, zero);  // q > 0 ? q : 0, so NaN gives 0
      q = vbslq_f32(vcltq_f32(q, top), q, top);    // q < top ? q : top
      const uint16x4_t h = vmovn_u32(vcvtq_u32_f32(q));
      const uint32_t four = vget_lane_u32(vreinterpret_u32_u8(vmovn_u16(vcombine_u16(h, h))), 0);
      std::memcpy(codes + g * gs + i, &four, 4);
    }
  }
}

// Four codes to floats: one byte each, or two per byte low nibble first.
inline float32x4_t codes4_u8(const std::byte* p) {
  uint32_t word;
  std::memcpy(&word, p, 4);
  const uint16x4_t h = vget_low_u16(vmovl_u8(vcreate_u8(word)));
  return vcvtq_f32_u32(vmovl_u16(h));
}
inline float32x4_t codes4_u4(const std::byte* p) {
  uint8_t b[2];
  std::memcpy(b, p, 2);
  const uint32_t c[4] = {uint32_t{b[0]} & 15u, uint32_t{b[0]} >> 4u, uint32_t{b[1]} & 15u, uint32_t{b[1]} >> 4u};
  return vcvtq_f32_u32(vld1q_u32(c));
}

void dequantize_packed(const std::byte* packed, int bits, int64_t groups, int gs, const float* scales,
                       const float* biases, float* out) {
  if (bits != 8 && bits != 4) {
    portable_table().dequantize_packed(packed, bits, groups, gs, scales, biases, out);
    return;
  }
  for (int64_t g = 0; g < groups; ++g) {
    const float32x4_t s = vdupq_n_f32(scales[g]), b = vdupq_n_f32(biases[g]);
    for (int64_t j = g * gs; j < (g + 1) * gs; j += 4) {
      const float32x4_t q = bits == 8 ? codes4_u8(packed + j) : codes4_u4(packed + j / 2);
      vst1q_f32(out + j, vaddq_f32(vmulq_f32(q, s), b));
    }
  }
}

// Strips of 4·W columns keep their running sums in registers across all
// ranks, so A is read once per output row and the delta is stored once.
template <int W>
inline void lora_strip(const float* coef, const float* a, int64_t rank, int64_t n, int64_t i, float* delta) {
  float32x4_t acc[W];
  for (int j = 0; j < W; ++j) acc[j] = vdupq_n_f32(0.0f);
  for (int64_t k = 0; k < rank; ++k) {
    const float32x4_t c = vdupq_n_f32(coef[k]);
    const float* ak = a + k * n + i;
    for (int j = 0; j < W; ++j) acc[j] = vaddq_f32(acc[j], vmulq_f32(c, vld1q_f32(ak + 4 * j)));
  }
  for (int j = 0; j < W; ++j) vst1q_f32(delta + i + 4 * j, acc[j]);
}

void lora_delta(const float* coef, const float* a, int64_t rank, int64_t n, float* delta) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) lora_strip<4>(coef, a, rank, n, i, delta);
  for (; i + 4 <= n; i += 4) lora_strip<1>(coef, a, rank, n, i, delta);
  // The last columns one by one, in the portable order.
  for (; i < n; ++i) {
    float d = 0.0f;
    for (int64_t k = 0; k < rank; ++k) d += coef[k] * a[k * n + i];
    delta[i] = d;
  }
}

// FCVT to and from half precision rounds to nearest even (Linux leaves FPCR
// at its default: RNE, no flush to zero, no default NaN), quiets a
// signalling NaN and keeps the top payload bits, like dtype.h's scalar code.
void f16_to_f32_n(const void* in, float* out, int64_t n) {
  const auto* p = static_cast<const std::byte*>(in);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    uint16_t h[4];
    std::memcpy(h, p + 2 * i, 8);
    vst1q_f32(out + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h))));
  }
  portable_table().f16_to_f32(p + 2 * i, out + i, n - i);
}

void f32_to_f16_n(const float* in, void* out, int64_t n) {
  auto* p = static_cast<std::byte*>(out);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    uint16_t h[4];
    vst1_u16(h, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(in + i))));
    std::memcpy(p + 2 * i, h, 8);
  }
  portable_table().f32_to_f16(in + i, p + 2 * i, n - i);
}

void round_f16(const float* in, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(out + i, vcvt_f32_f16(vcvt_f16_f32(vld1q_f32(in + i))));
  portable_table().round_f16(in + i, out + i, n - i);
}

// The portable code's four lanes are two registers of two doubles.
void retention_lanes(const float* w0, const float* target, const float* result, int64_t n, double lanes[4][4]) {
  float64x2_t acc[4][2];
  for (int q = 0; q < 4; ++q) acc[q][0] = vld1q_f64(lanes[q]), acc[q][1] = vld1q_f64(lanes[q] + 2);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t b4 = vld1q_f32(w0 + i), t4 = vld1q_f32(target + i), r4 = vld1q_f32(result + i);
    for (int h = 0; h < 2; ++h) {
      const float64x2_t b = h == 0 ? vcvt_f64_f32(vget_low_f32(b4)) : vcvt_high_f64_f32(b4);
      const float64x2_t t = h == 0 ? vcvt_f64_f32(vget_low_f32(t4)) : vcvt_high_f64_f32(t4);
      const float64x2_t r = h == 0 ? vcvt_f64_f32(vget_low_f32(r4)) : vcvt_high_f64_f32(r4);
      const float64x2_t delta = vsubq_f64(t, b), change = vsubq_f64(r, b), error = vsubq_f64(r, t);
      acc[0][h] = vaddq_f64(acc[0][h], vmulq_f64(delta, delta));
      acc[1][h] = vaddq_f64(acc[1][h], vmulq_f64(error, error));
      acc[2][h] = vaddq_f64(acc[2][h], vmulq_f64(change, change));
      acc[3][h] = vaddq_f64(acc[3][h], vmulq_f64(change, delta));
    }
  }
  for (int q = 0; q < 4; ++q) vst1q_f64(lanes[q], acc[q][0]), vst1q_f64(lanes[q] + 2, acc[q][1]);
  // i is a multiple of 4, so the tail's elements keep their lanes.
  portable_table().retention_lanes(w0 + i, target + i, result + i, n - i, lanes);
}

constexpr Table kNeon = {quantize_groups, dequantize_packed, lora_delta,     f16_to_f32_n,
                         f32_to_f16_n,    round_f16,         retention_lanes};

}  // namespace

const Table* neon_table() { return &kNeon; }

}  // namespace mb::kernels

#else

namespace mb::kernels {
const Table* neon_table() { return nullptr; }
}  // namespace mb::kernels

#endif
