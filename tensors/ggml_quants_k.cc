// K-quant super-blocks, following llama.cpp's reference arithmetic step for
// step (docs/formats/gguf-blocks.md): float32 throughout, the same search
// order, and nearest_int's round-half-to-even through the 1.5*2^23 trick.
#include "tensors/ggml_quants_k.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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
[[maybe_unused]] float symmetric_scale(int n, int nmax, const float* x, int8_t* L) {
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

// The asymmetric scale-and-min search (llama.cpp's make_qkx2_quants, sum of
// squared weighted errors): codes L in [0, nmax], x ~ scale * L - *neg_min.
[[maybe_unused]] float scale_min_search(int n, int nmax, const float* x, const float* w, uint8_t* L, float* neg_min,
                                        uint8_t* Laux, float rmin, float rdelta, int nstep) {
  float min = x[0];
  float max = x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::fill(L, L + n, uint8_t{0});
    *neg_min = -min;
    return 0.0f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, nearest_int(iscale * (x[i] - min)))));
    const float diff = scale * L[i] + min - x[i];
    best_error += w[i] * (diff * diff);
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::max(0, std::min(nmax, nearest_int(iscale * (x[i] - min))));
      Laux[i] = static_cast<uint8_t>(l);
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D <= 0) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
    if (this_min > 0) {
      this_min = 0;
      this_scale = sum_xl / sum_l2;
    }
    float cur_error = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = this_scale * Laux[i] + this_min - x[i];
      cur_error += w[i] * (diff * diff);
    }
    if (cur_error < best_error) {
      std::copy(Laux, Laux + n, L);
      best_error = cur_error;
      scale = this_scale;
      min = this_min;
    }
  }
  *neg_min = -min;
  return scale;
}

#if defined(__SSE2__)
// scale_min_search() for four 32-value sub-blocks at once, one per SSE lane.
// The search is sequential within a sub-block but independent across them,
// so each lane performs exactly the scalar version's float operations in the
// same order, and the results are the same bits (the compat test against
// llama.cpp's quantize_row_q4_K_ref says so). Branches become per-lane
// selects; a lane whose values are all equal (max == min) computes garbage
// that is masked out and given the scalar early return's answer.
namespace lanes {

__m128 select(__m128 mask, __m128 a, __m128 b) { return _mm_or_ps(_mm_and_ps(mask, a), _mm_andnot_ps(mask, b)); }
__m128i select(__m128i mask, __m128i a, __m128i b) {
  return _mm_or_si128(_mm_and_si128(mask, a), _mm_andnot_si128(mask, b));
}
// max(0, min(nmax, nearest_int(v))) per lane (SSE2 has no min_epi32).
__m128i code(__m128 v, __m128i nmax) {
  __m128i l = _mm_sub_epi32(
      _mm_and_si128(_mm_castps_si128(_mm_add_ps(v, _mm_set1_ps(12582912.0f))), _mm_set1_epi32(0x007FFFFF)),
      _mm_set1_epi32(0x00400000));
  l = select(_mm_cmpgt_epi32(l, nmax), nmax, l);
  return select(_mm_cmplt_epi32(l, _mm_setzero_si128()), _mm_setzero_si128(), l);
}

// x and w: 4 sub-blocks of 32 values, one after another. Writes each
// sub-block's 32 codes to L (same layout), its -min to neg_min[k] and
// returns its scale in scale[k].
void scale_min_search4(int nmax, const float* x, const float* w, uint8_t* L, float* neg_min, float* scale_out,
                       float rmin, float rdelta, int nstep) {
  constexpr int n = 32;
  __m128 xt[n], wt[n];
  for (int i = 0; i < n; ++i) {
    xt[i] = _mm_setr_ps(x[i], x[n + i], x[2 * n + i], x[3 * n + i]);
    wt[i] = _mm_setr_ps(w[i], w[n + i], w[2 * n + i], w[3 * n + i]);
  }
  __m128 min = xt[0], max = xt[0], sum_w = wt[0], sum_x = _mm_mul_ps(sum_w, xt[0]);
  for (int i = 1; i < n; ++i) {
    min = _mm_min_ps(xt[i], min);  // x < min ? x : min
    max = _mm_max_ps(xt[i], max);
    sum_w = _mm_add_ps(sum_w, wt[i]);
    sum_x = _mm_add_ps(sum_x, _mm_mul_ps(wt[i], xt[i]));
  }
  min = _mm_min_ps(_mm_setzero_ps(), min);  // min > 0 ? 0 : min
  const __m128 flat = _mm_cmpeq_ps(max, min);
  const __m128 flat_min = min;
  const __m128i vnmax = _mm_set1_epi32(nmax);
  __m128 iscale = _mm_div_ps(_mm_set1_ps(static_cast<float>(nmax)), _mm_sub_ps(max, min));
  __m128 scale = _mm_div_ps(_mm_set1_ps(1.0f), iscale);
  __m128 best_error = _mm_setzero_ps();
  __m128i Lt[n], Laux[n];
  for (int i = 0; i < n; ++i) {
    Lt[i] = code(_mm_mul_ps(iscale, _mm_sub_ps(xt[i], min)), vnmax);
    const __m128 diff = _mm_sub_ps(_mm_add_ps(_mm_mul_ps(scale, _mm_cvtepi32_ps(Lt[i])), min), xt[i]);
    best_error = _mm_add_ps(best_error, _mm_mul_ps(wt[i], _mm_mul_ps(diff, diff)));
  }
  for (int is = 0; is <= nstep; ++is) {
    const float step = rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax);
    iscale = _mm_div_ps(_mm_set1_ps(step), _mm_sub_ps(max, min));
    __m128 sum_l = _mm_setzero_ps(), sum_l2 = _mm_setzero_ps(), sum_xl = _mm_setzero_ps();
    for (int i = 0; i < n; ++i) {
      Laux[i] = code(_mm_mul_ps(iscale, _mm_sub_ps(xt[i], min)), vnmax);
      const __m128 l = _mm_cvtepi32_ps(Laux[i]);
      const __m128 wl = _mm_mul_ps(wt[i], l);
      sum_l = _mm_add_ps(sum_l, wl);
      sum_l2 = _mm_add_ps(sum_l2, _mm_mul_ps(wl, l));
      sum_xl = _mm_add_ps(sum_xl, _mm_mul_ps(wl, xt[i]));
    }
    const __m128 D = _mm_sub_ps(_mm_mul_ps(sum_w, sum_l2), _mm_mul_ps(sum_l, sum_l));
    const __m128 valid = _mm_cmpgt_ps(D, _mm_setzero_ps());
    if (_mm_movemask_ps(valid) == 0) continue;
    __m128 this_scale = _mm_div_ps(_mm_sub_ps(_mm_mul_ps(sum_w, sum_xl), _mm_mul_ps(sum_x, sum_l)), D);
    __m128 this_min = _mm_div_ps(_mm_sub_ps(_mm_mul_ps(sum_l2, sum_x), _mm_mul_ps(sum_l, sum_xl)), D);
    const __m128 positive = _mm_cmpgt_ps(this_min, _mm_setzero_ps());
    this_scale = select(positive, _mm_div_ps(sum_xl, sum_l2), this_scale);
    this_min = select(positive, _mm_setzero_ps(), this_min);
    __m128 cur_error = _mm_setzero_ps();
    for (int i = 0; i < n; ++i) {
      const __m128 diff = _mm_sub_ps(_mm_add_ps(_mm_mul_ps(this_scale, _mm_cvtepi32_ps(Laux[i])), this_min), xt[i]);
      cur_error = _mm_add_ps(cur_error, _mm_mul_ps(wt[i], _mm_mul_ps(diff, diff)));
    }
    const __m128 better = _mm_and_ps(valid, _mm_cmplt_ps(cur_error, best_error));
    if (_mm_movemask_ps(better) == 0) continue;
    const __m128i take = _mm_castps_si128(better);
    for (int i = 0; i < n; ++i) Lt[i] = select(take, Laux[i], Lt[i]);
    best_error = select(better, cur_error, best_error);
    scale = select(better, this_scale, scale);
    min = select(better, this_min, min);
  }
  scale = select(flat, _mm_setzero_ps(), scale);
  min = select(flat, flat_min, min);
  alignas(16) float scales[4], mins[4];
  alignas(16) int32_t codes[4];
  _mm_store_ps(scales, scale);
  _mm_store_ps(mins, min);
  const int flat_lanes = _mm_movemask_ps(flat);
  for (int i = 0; i < n; ++i) {
    _mm_store_si128(reinterpret_cast<__m128i*>(codes), Lt[i]);
    for (int k = 0; k < 4; ++k) L[k * n + i] = (flat_lanes >> k) & 1 ? 0 : static_cast<uint8_t>(codes[k]);
  }
  for (int k = 0; k < 4; ++k) {
    neg_min[k] = -mins[k];
    scale_out[k] = scales[k];
  }
}

// symmetric_scale() for four 16-value sub-blocks at once, one per lane, in
// the scalar version's order of operations (as scale_min_search4 is). A lane
// whose values are all (nearly) zero gets the scalar early return's answer.
void symmetric_scale4(int nmax, const float* x, int8_t* L, float* scale_out) {
  constexpr int n = 16;
  __m128 xt[n];
  for (int i = 0; i < n; ++i) xt[i] = _mm_setr_ps(x[i], x[n + i], x[2 * n + i], x[3 * n + i]);
  const __m128 magnitude = _mm_castsi128_ps(_mm_set1_epi32(0x7FFFFFFF));
  __m128 amax = _mm_setzero_ps(), max = _mm_setzero_ps();
  for (int i = 0; i < n; ++i) {
    const __m128 a = _mm_and_ps(xt[i], magnitude);
    const __m128 gt = _mm_cmpgt_ps(a, amax);
    amax = select(gt, a, amax);
    max = select(gt, xt[i], max);
  }
  const __m128 zero = _mm_cmplt_ps(amax, _mm_set1_ps(kGroupMaxEps));
  const __m128i hi = _mm_set1_epi32(nmax - 1), lo = _mm_set1_epi32(-nmax), offset = _mm_set1_epi32(nmax);
  // clamp_code: max(-nmax, min(nmax - 1, nearest_int(v))).
  const auto clamp = [&](__m128 v) {
    __m128i l = _mm_sub_epi32(
        _mm_and_si128(_mm_castps_si128(_mm_add_ps(v, _mm_set1_ps(12582912.0f))), _mm_set1_epi32(0x007FFFFF)),
        _mm_set1_epi32(0x00400000));
    l = select(_mm_cmpgt_epi32(l, hi), hi, l);
    return select(_mm_cmplt_epi32(l, lo), lo, l);
  };
  __m128 iscale = _mm_div_ps(_mm_set1_ps(-static_cast<float>(nmax)), max);
  __m128 sumlx = _mm_setzero_ps(), suml2 = _mm_setzero_ps();
  __m128i Lt[n];
  for (int i = 0; i < n; ++i) {
    const __m128i l = clamp(_mm_mul_ps(iscale, xt[i]));
    Lt[i] = _mm_add_epi32(l, offset);
    const __m128 lf = _mm_cvtepi32_ps(l), w = _mm_mul_ps(xt[i], xt[i]);
    sumlx = _mm_add_ps(sumlx, _mm_mul_ps(_mm_mul_ps(w, xt[i]), lf));
    suml2 = _mm_add_ps(suml2, _mm_mul_ps(_mm_mul_ps(w, lf), lf));
  }
  const __m128 nonzero = _mm_cmpneq_ps(suml2, _mm_setzero_ps());
  __m128 scale = _mm_and_ps(nonzero, _mm_div_ps(sumlx, suml2));
  __m128 best = _mm_mul_ps(scale, sumlx);
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = _mm_div_ps(_mm_set1_ps(-(static_cast<float>(nmax) + 0.1f * static_cast<float>(is))), max);
    sumlx = suml2 = _mm_setzero_ps();
    __m128i codes[n];
    for (int i = 0; i < n; ++i) {
      codes[i] = clamp(_mm_mul_ps(iscale, xt[i]));
      const __m128 lf = _mm_cvtepi32_ps(codes[i]), w = _mm_mul_ps(xt[i], xt[i]);
      sumlx = _mm_add_ps(sumlx, _mm_mul_ps(_mm_mul_ps(w, xt[i]), lf));
      suml2 = _mm_add_ps(suml2, _mm_mul_ps(_mm_mul_ps(w, lf), lf));
    }
    const __m128 better = _mm_and_ps(_mm_cmpgt_ps(suml2, _mm_setzero_ps()),
                                     _mm_cmpgt_ps(_mm_mul_ps(sumlx, sumlx), _mm_mul_ps(best, suml2)));
    if (_mm_movemask_ps(better) == 0) continue;
    const __m128i take = _mm_castps_si128(better);
    for (int i = 0; i < n; ++i) Lt[i] = select(take, _mm_add_epi32(codes[i], offset), Lt[i]);
    scale = select(better, _mm_div_ps(sumlx, suml2), scale);
    best = select(better, _mm_mul_ps(scale, sumlx), best);
  }
  scale = select(zero, _mm_setzero_ps(), scale);
  alignas(16) float scales[4];
  alignas(16) int32_t codes[4];
  _mm_store_ps(scales, scale);
  const int zero_lanes = _mm_movemask_ps(zero);
  for (int i = 0; i < n; ++i) {
    _mm_store_si128(reinterpret_cast<__m128i*>(codes), Lt[i]);
    for (int k = 0; k < 4; ++k) L[k * n + i] = (zero_lanes >> k) & 1 ? 0 : static_cast<int8_t>(codes[k]);
  }
  for (int k = 0; k < 4; ++k) scale_out[k] = scales[k];
}

}  // namespace lanes
#endif

// The 12 scale bytes of Q4_K/Q5_K: eight 6-bit scales and eight 6-bit mins.
// Sub-blocks 0-3 use the low 6 bits of bytes 0-3 (scale) and 4-7 (min);
// 4-7 use the nibbles of bytes 8-11 plus the top 2 bits of bytes 0-7.
void get_scale_min(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}
void put_scale_min(int j, uint8_t ls, uint8_t lm, uint8_t* q) {
  if (j < 4) {
    q[j] = ls;
    q[j + 4] = lm;
  } else {
    q[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
    q[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
    q[j] |= static_cast<uint8_t>((lm >> 4) << 6);
  }
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
#if defined(__SSE2__)
  for (int ib = 0; ib < kQkK / 16; ib += 4) lanes::symmetric_scale4(32, x + 16 * ib, L + 16 * ib, &scales[ib]);
#else
  for (int ib = 0; ib < kQkK / 16; ++ib) scales[ib] = symmetric_scale(16, 32, x + 16 * ib, L + 16 * ib);
#endif
  for (int ib = 0; ib < kQkK / 16; ++ib) {
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

// Q4_K/Q5_K scales: writes d, dmin and the 12 scale bytes into out[0..16)
// and the codes (0..nmax) into L; the callers differ in how they pack L.
void scale_min_codes(const float* x, int nmax, float rmin, int nstep, size_t block_bytes, uint8_t* out, uint8_t* L) {
  float w[kQkK];
  float mins[kQkK / 32];
  float scales[kQkK / 32];
  for (int j = 0; j < kQkK / 32; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) w[32 * j + l] = av_x + std::fabs(x[32 * j + l]);
  }
#if defined(__SSE2__)
  for (int j = 0; j < kQkK / 32; j += 4)
    lanes::scale_min_search4(nmax, x + 32 * j, w + 32 * j, L + 32 * j, &mins[j], &scales[j], rmin, 0.1f, nstep);
#else
  uint8_t Laux[32];
  for (int j = 0; j < kQkK / 32; ++j)
    scales[j] = scale_min_search(32, nmax, x + 32 * j, w + 32 * j, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep);
#endif
  float max_scale = 0;
  float max_min = 0;
  for (int j = 0; j < kQkK / 32; ++j) {
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  std::memset(out, 0, block_bytes);
  uint8_t* sc = out + 4;
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  for (int j = 0; j < kQkK / 32; ++j) {
    const auto ls = static_cast<uint8_t>(nearest_int(inv_scale * scales[j]));
    const auto lm = static_cast<uint8_t>(nearest_int(inv_min * mins[j]));
    put_scale_min(j, std::min<uint8_t>(63, ls), std::min<uint8_t>(63, lm), sc);
  }
  put_f16(out, max_scale / 63.f);
  put_f16(out + 2, max_min / 63.f);
  for (int j = 0; j < kQkK / 32; ++j) {
    uint8_t s = 0, m = 0;
    get_scale_min(j, sc, &s, &m);
    const float d = get_f16(out) * s;
    if (d == 0.0f) continue;
    const float dm = get_f16(out + 2) * m;
    for (int ii = 0; ii < 32; ++ii) {
      L[32 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(nmax, nearest_int((x[32 * j + ii] + dm) / d))));
    }
  }
}

void quantize_q4_k(const float* x, uint8_t* out) {
  uint8_t L[kQkK];
  scale_min_codes(x, 15, -1.0f, 20, 144, out, L);
  uint8_t* q = out + 16;
  for (int j = 0; j < kQkK; j += 64) {
    for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
    q += 32;
  }
}

void dequantize_q4_k(const uint8_t* in, float* y) {
  const float d = get_f16(in);
  const float min = get_f16(in + 2);
  const uint8_t* q = in + 16;
  for (int j = 0, is = 0; j < kQkK; j += 64, is += 2, q += 32) {
    uint8_t s = 0, m = 0;
    get_scale_min(is, in + 4, &s, &m);
    const float d1 = d * s, m1 = min * m;
    get_scale_min(is + 1, in + 4, &s, &m);
    const float d2 = d * s, m2 = min * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
  }
}

void quantize_q5_k(const float* x, uint8_t* out) {
  uint8_t L[kQkK];
  scale_min_codes(x, 31, -0.5f, 15, 176, out, L);
  uint8_t* qh = out + 16;
  uint8_t* ql = out + 48;
  uint8_t m1 = 1, m2 = 2;
  for (int n = 0; n < kQkK; n += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
    for (int j = 0; j < 32; ++j) {
      int l1 = L[n + j];
      int l2 = L[n + j + 32];
      if (l1 > 15) {
        l1 -= 16;
        qh[j] |= m1;
      }
      if (l2 > 15) {
        l2 -= 16;
        qh[j] |= m2;
      }
      ql[j] = static_cast<uint8_t>(l1 | (l2 << 4));
    }
  }
}

void dequantize_q5_k(const uint8_t* in, float* y) {
  const float d = get_f16(in);
  const float min = get_f16(in + 2);
  const uint8_t* qh = in + 16;
  const uint8_t* ql = in + 48;
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0, is = 0; j < kQkK; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
    uint8_t s = 0, m = 0;
    get_scale_min(is, in + 4, &s, &m);
    const float d1 = d * s, m1 = min * m;
    get_scale_min(is + 1, in + 4, &s, &m);
    const float d2 = d * s, m2 = min * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
  }
}

}  // namespace mb::ggml_k
