// GGUF block quantizers (docs/formats/gguf-blocks.md). Each quantizer
// follows llama.cpp's reference arithmetic step for step (float32, the same
// order of operations and the same integer conversions), since a different
// rounding order changes codes and breaks bit-exactness.
#include "tensors/ggml_quants.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>

#include "tensors/dtype.h"
#include "tensors/ggml_quants_k.h"

namespace mb {
namespace {

constexpr int64_t kQk = 32;  // values per block of the Q*_0 / Q*_1 types

void put_f16(uint8_t* dst, float value) {
  const uint16_t bits = f32_to_f16(value);
  dst[0] = static_cast<uint8_t>(bits & 0xFF);
  dst[1] = static_cast<uint8_t>(bits >> 8);
}
float get_f16(const uint8_t* src) { return f16_to_f32(static_cast<uint16_t>(src[0] | (src[1] << 8))); }

// The value of largest magnitude, with its sign (the first one on ties).
float signed_absmax(const float* x) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int64_t j = 0; j < kQk; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

// Q8_0: d = absmax/127, q = round-half-away(x/d). 34 bytes: d, qs[32].
//
// Written without libm: std::fmax and std::roundf are out-of-line calls
// under -fno-fast-math, and were two thirds of a fuse -> Q8_0 export. The
// replacements give the same results. `a > amax ? a : amax` keeps amax for
// a NaN, as fmax does (amax starts at 0 and is never NaN); max is order-free,
// so the 4-lane form finds the same value. For |v| <= 128 (every finite
// weight: |x·id| <= 127 up to rounding), truncating through int32 and
// stepping away from zero when the exact remainder is at least a half is
// roundf's round-half-away-from-zero. Out of that range the reference's
// conversion to int8 is undefined, so values are clamped first, NaN to 127,
// the same way in both forms (SSE's min/max return the second operand when
// either is NaN).
[[maybe_unused]] int32_t round_half_away(float v) {
  float c = v < 127.0f ? v : 127.0f;
  c = c > -128.0f ? c : -128.0f;
  const int32_t t = static_cast<int32_t>(c);
  const float rest = c - static_cast<float>(t);
  return t + (rest >= 0.5f) - (rest <= -0.5f);
}
#if defined(__SSE2__)
// Four codes at once, in int32 lanes (the same steps as round_half_away).
__m128i round_half_away4(__m128 v) {
  const __m128 c = _mm_max_ps(_mm_min_ps(v, _mm_set1_ps(127.0f)), _mm_set1_ps(-128.0f));
  const __m128i t = _mm_cvttps_epi32(c);
  const __m128 rest = _mm_sub_ps(c, _mm_cvtepi32_ps(t));
  const __m128i up = _mm_castps_si128(_mm_cmpge_ps(rest, _mm_set1_ps(0.5f)));     // -1 where it rounds up
  const __m128i down = _mm_castps_si128(_mm_cmple_ps(rest, _mm_set1_ps(-0.5f)));  // -1 where it rounds down
  return _mm_add_epi32(_mm_sub_epi32(t, up), down);
}
#endif
void quantize_q8_0(const float* x, uint8_t* out) {
#if defined(__SSE2__)
  const __m128 magnitude = _mm_castsi128_ps(_mm_set1_epi32(0x7FFFFFFF));
  __m128 m4 = _mm_setzero_ps();
  for (int64_t j = 0; j < kQk; j += 4) m4 = _mm_max_ps(_mm_and_ps(_mm_loadu_ps(x + j), magnitude), m4);
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
  const float amax = _mm_cvtss_f32(m4);
#else
  float amax = 0.0f;
  for (int64_t j = 0; j < kQk; ++j) {
    const float a = std::fabs(x[j]);
    amax = a > amax ? a : amax;
  }
#endif
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_f16(out, d);
#if defined(__SSE2__)
  const __m128 vid = _mm_set1_ps(id);
  for (int64_t j = 0; j < kQk; j += 16) {
    __m128i q[4];
    for (int k = 0; k < 4; ++k) q[k] = round_half_away4(_mm_mul_ps(_mm_loadu_ps(x + j + 4 * k), vid));
    // Codes are in [-128, 127], so the saturating packs only narrow.
    const __m128i bytes = _mm_packs_epi16(_mm_packs_epi32(q[0], q[1]), _mm_packs_epi32(q[2], q[3]));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 + j), bytes);
  }
#else
  for (int64_t j = 0; j < kQk; ++j) out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(round_half_away(x[j] * id)));
#endif
}
void dequantize_q8_0(const uint8_t* in, float* y) {
  const float d = get_f16(in);
  for (int64_t j = 0; j < kQk; ++j) y[j] = static_cast<float>(static_cast<int8_t>(in[2 + j])) * d;
}

// Q4_0: d = max/-8, q = min(15, trunc(x/d + 8.5)). 18 bytes: d, qs[16];
// value j in the low nibble of qs[j], value j+16 in the high nibble.
void quantize_q4_0(const float* x, uint8_t* out) {
  const float d = signed_absmax(x) / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_f16(out, d);
  for (int64_t j = 0; j < kQk / 2; ++j) {
    const int q0 = std::min<int>(15, static_cast<int8_t>(x[j] * id + 8.5f));
    const int q1 = std::min<int>(15, static_cast<int8_t>(x[j + kQk / 2] * id + 8.5f));
    out[2 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
  }
}
void dequantize_q4_0(const uint8_t* in, float* y) {
  const float d = get_f16(in);
  for (int64_t j = 0; j < kQk / 2; ++j) {
    y[j] = static_cast<float>((in[2 + j] & 0x0F) - 8) * d;
    y[j + kQk / 2] = static_cast<float>((in[2 + j] >> 4) - 8) * d;
  }
}

// The fifth bits of Q5_0/Q5_1 codes: bit j of a little-endian uint32 holds
// code j's bit 4.
void put_qh(uint8_t* dst, uint32_t qh) {
  for (int k = 0; k < 4; ++k) dst[k] = static_cast<uint8_t>(qh >> (8 * k));
}
uint32_t get_qh(const uint8_t* src) {
  return static_cast<uint32_t>(src[0]) | (static_cast<uint32_t>(src[1]) << 8) | (static_cast<uint32_t>(src[2]) << 16) |
         (static_cast<uint32_t>(src[3]) << 24);
}

// Packs 32 five-bit codes into qh[4] + qs[16] (the Q4_0 nibble order).
void pack5(const int* q, uint8_t* qh_qs) {
  uint32_t qh = 0;
  for (int64_t j = 0; j < kQk / 2; ++j) {
    qh_qs[4 + j] = static_cast<uint8_t>((q[j] & 0x0F) | ((q[j + kQk / 2] & 0x0F) << 4));
    qh |= static_cast<uint32_t>((q[j] & 0x10) >> 4) << j;
    qh |= static_cast<uint32_t>((q[j + kQk / 2] & 0x10) >> 4) << (j + kQk / 2);
  }
  put_qh(qh_qs, qh);
}
void unpack5(const uint8_t* qh_qs, int* q) {
  const uint32_t qh = get_qh(qh_qs);
  for (int64_t j = 0; j < kQk / 2; ++j) {
    q[j] = (qh_qs[4 + j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
    q[j + kQk / 2] = (qh_qs[4 + j] >> 4) | static_cast<int>(((qh >> (j + kQk / 2)) & 1u) << 4);
  }
}

// Q5_0: d = max/-16, q = min(31, trunc(x/d + 16.5)). 22 bytes: d, qh, qs.
void quantize_q5_0(const float* x, uint8_t* out) {
  const float d = signed_absmax(x) / -16.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_f16(out, d);
  int q[kQk];
  for (int64_t j = 0; j < kQk; ++j) q[j] = std::min<int>(31, static_cast<int8_t>(x[j] * id + 16.5f));
  pack5(q, out + 2);
}
void dequantize_q5_0(const uint8_t* in, float* y) {
  const float d = get_f16(in);
  int q[kQk];
  unpack5(in + 2, q);
  for (int64_t j = 0; j < kQk; ++j) y[j] = static_cast<float>(q[j] - 16) * d;
}

// Q5_1: d = (max-min)/31, m = min, q = trunc((x-m)/d + 0.5) as uint8.
// 24 bytes: d, m, qh, qs.
void quantize_q5_1(const float* x, uint8_t* out) {
  float min = x[0];
  float max = x[0];
  for (int64_t j = 1; j < kQk; ++j) {
    min = std::fmin(min, x[j]);
    max = std::fmax(max, x[j]);
  }
  const float d = (max - min) / 31.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_f16(out, d);
  put_f16(out + 2, min);
  int q[kQk];
  for (int64_t j = 0; j < kQk; ++j) q[j] = static_cast<uint8_t>((x[j] - min) * id + 0.5f);
  pack5(q, out + 4);
}
void dequantize_q5_1(const uint8_t* in, float* y) {
  const float d = get_f16(in);
  const float m = get_f16(in + 2);
  int q[kQk];
  unpack5(in + 4, q);
  for (int64_t j = 0; j < kQk; ++j) y[j] = static_cast<float>(q[j]) * d + m;
}

using BlockQuantizer = void (*)(const float*, uint8_t*);
using BlockDequantizer = void (*)(const uint8_t*, float*);

struct BlockCodec {
  BlockQuantizer quantize;
  BlockDequantizer dequantize;
};

std::optional<BlockCodec> block_codec(GgmlType type) {
  switch (type) {
    case GgmlType::kQ8_0:
      return BlockCodec{quantize_q8_0, dequantize_q8_0};
    case GgmlType::kQ4_0:
      return BlockCodec{quantize_q4_0, dequantize_q4_0};
    case GgmlType::kQ5_0:
      return BlockCodec{quantize_q5_0, dequantize_q5_0};
    case GgmlType::kQ5_1:
      return BlockCodec{quantize_q5_1, dequantize_q5_1};
    case GgmlType::kQ4_K:
      return BlockCodec{ggml_k::quantize_q4_k, ggml_k::dequantize_q4_k};
    case GgmlType::kQ5_K:
      return BlockCodec{ggml_k::quantize_q5_k, ggml_k::dequantize_q5_k};
    case GgmlType::kQ6_K:
      return BlockCodec{ggml_k::quantize_q6_k, ggml_k::dequantize_q6_k};
    default:
      return std::nullopt;
  }
}

void put_u16(uint8_t* dst, uint16_t bits) {
  dst[0] = static_cast<uint8_t>(bits & 0xFF);
  dst[1] = static_cast<uint8_t>(bits >> 8);
}

}  // namespace

const char* ggml_type_name(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
      return "f32";
    case GgmlType::kF16:
      return "f16";
    case GgmlType::kQ4_0:
      return "q4_0";
    case GgmlType::kQ5_0:
      return "q5_0";
    case GgmlType::kQ5_1:
      return "q5_1";
    case GgmlType::kQ8_0:
      return "q8_0";
    case GgmlType::kQ4_K:
      return "q4_K";
    case GgmlType::kQ5_K:
      return "q5_K";
    case GgmlType::kQ6_K:
      return "q6_K";
    case GgmlType::kBF16:
      return "bf16";
  }
  return "?";
}

std::optional<GgmlType> ggml_type_from_id(uint32_t id) {
  switch (id) {
    case 0:
    case 1:
    case 2:
    case 6:
    case 7:
    case 8:
    case 12:
    case 13:
    case 14:
    case 30:
      return static_cast<GgmlType>(id);
    default:
      return std::nullopt;
  }
}

int64_t ggml_block_size(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
      return 1;
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
      return 256;
    default:
      return kQk;
  }
}

size_t ggml_type_size(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
      return 4;
    case GgmlType::kF16:
    case GgmlType::kBF16:
      return 2;
    case GgmlType::kQ4_0:
      return 18;
    case GgmlType::kQ5_0:
      return 22;
    case GgmlType::kQ5_1:
      return 24;
    case GgmlType::kQ8_0:
      return 34;
    case GgmlType::kQ4_K:
      return 144;
    case GgmlType::kQ5_K:
      return 176;
    case GgmlType::kQ6_K:
      return 210;
  }
  return 0;
}

size_t ggml_row_size(GgmlType type, int64_t cols) {
  assert(ggml_row_fits(type, cols));
  return static_cast<size_t>(cols / ggml_block_size(type)) * ggml_type_size(type);
}

bool ggml_row_fits(GgmlType type, int64_t cols) { return cols > 0 && cols % ggml_block_size(type) == 0; }

// Every type of the enum is implemented.
bool ggml_type_implemented(GgmlType type) {
  return type == GgmlType::kF32 || type == GgmlType::kF16 || type == GgmlType::kBF16 || block_codec(type).has_value();
}

void quantize_rows_into(GgmlType type, const float* src, int64_t rows, int64_t cols, uint8_t* dst) {
  assert(ggml_type_implemented(type) && ggml_row_fits(type, cols));
  const int64_t n = rows * cols;
  if (type == GgmlType::kF32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * 4);
  } else if (type == GgmlType::kF16 || type == GgmlType::kBF16) {
    for (int64_t i = 0; i < n; ++i)
      put_u16(dst + 2 * i, type == GgmlType::kF16 ? f32_to_f16(src[i]) : f32_to_bf16(src[i]));
  } else {
    const BlockCodec codec = block_codec(type).value();
    const size_t block_bytes = ggml_type_size(type);
    const int64_t bs = ggml_block_size(type);
    for (int64_t b = 0; b < n / bs; ++b) codec.quantize(src + b * bs, dst + b * block_bytes);
  }
}

std::vector<uint8_t> quantize_rows(GgmlType type, const float* src, int64_t rows, int64_t cols) {
  std::vector<uint8_t> out(ggml_row_size(type, cols) * static_cast<size_t>(rows));
  quantize_rows_into(type, src, rows, cols, out.data());
  return out;
}

void dequantize_rows(GgmlType type, const uint8_t* src, int64_t rows, int64_t cols, float* dst) {
  assert(ggml_type_implemented(type) && ggml_row_fits(type, cols));
  const int64_t n = rows * cols;
  if (type == GgmlType::kF32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * 4);
  } else if (type == GgmlType::kF16 || type == GgmlType::kBF16) {
    for (int64_t i = 0; i < n; ++i) {
      const auto bits = static_cast<uint16_t>(src[2 * i] | (src[2 * i + 1] << 8));
      dst[i] = type == GgmlType::kF16 ? f16_to_f32(bits) : bf16_to_f32(bits);
    }
  } else {
    const BlockCodec codec = block_codec(type).value();
    const size_t block_bytes = ggml_type_size(type);
    const int64_t bs = ggml_block_size(type);
    for (int64_t b = 0; b < n / bs; ++b) codec.dequantize(src + b * block_bytes, dst + b * bs);
  }
}

}  // namespace mb
