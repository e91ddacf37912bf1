// K-quant super-blocks, following llama.cpp's reference arithmetic step for
// step (docs/formats/gguf-blocks.md): float32 throughout, the same search
// order, and nearest_int's round-half-to-even through the 1.5*2^23 trick.
#include "tensors/ggml_quants_k.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tensors/dtype.h"

namespace mb::ggml_k {
namespace {

constexpr float kGroupMaxEps = 1e-15f;  // below this a group counts as all zero

// Round to nearest, ties to even, valid for |x| <= 2^22 (what llama.cpp's
// nearest_int computes by adding 1.5 * 2^23 and reading the mantissa).
int nearest_int(float value) {
  const float shifted = value + 12582912.0f;
  int32_t bits = 0;
  std::memcpy(&bits, &shifted, sizeof(bits));
  return (bits & 0x007FFFFF) - 0x00400000;
}

int clamp_code(float iscale_x, int nmax) { return std::max(-nmax, std::min(nmax - 1, nearest_int(iscale_x))); }

// The symmetric scale search (llama.cpp's make_qx_quants with weights x^2):
// codes L[i] in [0, 2*nmax), returns the scale d with x ~ d * (L - nmax).
float symmetric_scale(int n, int nmax, const float* x, int8_t* L) {
  float max = 0.0f;
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, int8_t{0});
    return 0.0f;
  }
  float iscale = -static_cast<float>(nmax) / max;
  float sumlx = 0.0f;
  float suml2 = 0.0f;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_code(iscale * x[i], nmax);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sumlx = suml2 = 0.0f;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_code(iscale * x[i], nmax);
      const float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(nmax + clamp_code(iscale * x[i], nmax));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

void put_f16(uint8_t* dst, float value) {
  const uint16_t bits = f32_to_f16(value);
  dst[0] = static_cast<uint8_t>(bits & 0xFF);
  dst[1] = static_cast<uint8_t>(bits >> 8);
}
float get_f16(const uint8_t* src) { return f16_to_f32(static_cast<uint16_t>(src[0] | (src[1] << 8))); }

constexpr int kQ6Ql = 0;
constexpr int kQ6Qh = 128;
constexpr int kQ6Scales = 192;
constexpr int kQ6D = 208;

// Packs 6-bit codes: per 128-value half, ql holds low nibbles of values
// l, l+32 (low) and l+64, l+96 (high); qh holds the four 2-bit tops.
void pack_q6(const int8_t* L, uint8_t* out) {
  uint8_t* ql = out + kQ6Ql;
  uint8_t* qh = out + kQ6Qh;
  for (int j = 0; j < kQkK; j += 128) {
    for (int l = 0; l < 32; ++l) {
      const int a = L[j + l], b = L[j + l + 32], c = L[j + l + 64], e = L[j + l + 96];
      ql[l] = static_cast<uint8_t>((a & 0xF) | ((c & 0xF) << 4));
      ql[l + 32] = static_cast<uint8_t>((b & 0xF) | ((e & 0xF) << 4));
      qh[l] = static_cast<uint8_t>((a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6));
    }
    ql += 64;
    qh += 32;
  }
}

}  // namespace

void quantize_q6_k(const float* x, uint8_t* out) {
  int8_t L[kQkK];
  float scales[kQkK / 16];
  float max_scale = 0.0f;
  float max_abs_scale = 0.0f;
  for (int ib = 0; ib < kQkK / 16; ++ib) {
    scales[ib] = symmetric_scale(16, 32, x + 16 * ib, L + 16 * ib);
    if (std::fabs(scales[ib]) > max_abs_scale) {
      max_abs_scale = std::fabs(scales[ib]);
      max_scale = scales[ib];
    }
  }
  std::memset(out, 0, 210);
  if (max_abs_scale < kGroupMaxEps) return;  // all zero, d = +0
  const float iscale = -128.0f / max_scale;
  put_f16(out + kQ6D, 1 / iscale);
  const float d_stored = get_f16(out + kQ6D);
  for (int ib = 0; ib < kQkK / 16; ++ib) {
    const int8_t sc = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
    out[kQ6Scales + ib] = static_cast<uint8_t>(sc);
    const float d = d_stored * sc;
    if (d == 0.0f) continue;  // keeps the codes of the search
    for (int ii = 0; ii < 16; ++ii) {
      const int l = std::max(-32, std::min(31, nearest_int(x[16 * ib + ii] / d)));
      L[16 * ib + ii] = static_cast<int8_t>(l + 32);
    }
  }
  pack_q6(L, out);
}

void dequantize_q6_k(const uint8_t* in, float* y) {
  const float d = get_f16(in + kQ6D);
  const uint8_t* ql = in + kQ6Ql;
  const uint8_t* qh = in + kQ6Qh;
  const auto* sc = reinterpret_cast<const int8_t*>(in + kQ6Scales);
  for (int n = 0; n < kQkK; n += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[n + l] = d * sc[is] * q1;
      y[n + l + 32] = d * sc[is + 2] * q2;
      y[n + l + 64] = d * sc[is + 4] * q3;
      y[n + l + 96] = d * sc[is + 6] * q4;
    }
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

}  // namespace mb::ggml_k
