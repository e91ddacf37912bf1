// AVX2+F16C kernels: 8 floats per register, each lane doing exactly the
// portable kernel's operations on its element (see kernels.h). No FMA: the
// target list leaves it out, so nothing can be contracted. Where the
// portable code relies on a comparison's behaviour with NaN, the operand
// order of the vector min/max below is chosen to match it, and the notes
// say how.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "tensors/kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>

#define MB_AVX2 __attribute__((target("avx2,f16c")))

namespace mb::kernels {
namespace {

// Eight codes in [0, 255] (as floats holding integers) to eight bytes.
MB_AVX2 inline void store_codes8(__m256 q, uint8_t* out) {
  const __m256i i = _mm256_cvttps_epi32(q);
  const __m128i w16 = _mm_packus_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packus_epi16(w16, w16));
}

// round_half_away of mlx_quant.cc, lane by lane: truncate, then step by one
// when the remainder reaches ±0.5. For |x| ≥ 2^23, ±inf and NaN the
// remainder is 0 or NaN, so x comes back unchanged, as in the scalar code.
MB_AVX2 inline __m256 round_half_away(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 r = _mm256_round_ps(x, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 d = _mm256_sub_ps(x, r);
  r = _mm256_add_ps(r, _mm256_and_ps(_mm256_cmp_ps(d, _mm256_set1_ps(0.5f), _CMP_GE_OQ), one));
  r = _mm256_sub_ps(r, _mm256_and_ps(_mm256_cmp_ps(d, _mm256_set1_ps(-0.5f), _CMP_LE_OQ), one));
  return r;
}

MB_AVX2 inline __m256 round_code(__m256 x, bool cpu) {
  return cpu ? _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC) : round_half_away(x);
}

// The largest (smallest) lane. With no NaN in the lanes the order of the
// reduction can only change the sign of a zero result, which group_params
// never observes (±0 - x and x - ±0 are equal, and |±0| is 0).
MB_AVX2 inline float lane_max(__m256 v) {
  v = _mm256_max_ps(v, _mm256_permute2f128_ps(v, v, 1));
  v = _mm256_max_ps(v, _mm256_shuffle_ps(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = _mm256_max_ps(v, _mm256_shuffle_ps(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm256_cvtss_f32(v);
}
MB_AVX2 inline float lane_min(__m256 v) {
  v = _mm256_min_ps(v, _mm256_permute2f128_ps(v, v, 1));
  v = _mm256_min_ps(v, _mm256_shuffle_ps(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = _mm256_min_ps(v, _mm256_shuffle_ps(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm256_cvtss_f32(v);
}

// group_params (mlx_quant.cc) for eight groups at once, one per lane: the
// three dependent divisions are the slowest part of a group, and this way
// eight groups share them.
MB_AVX2 inline void group_params8(__m256 w_min, __m256 w_max, int bits, bool cpu, __m256* scale_out, __m256* bias_out) {
  const __m256 n_bins = _mm256_set1_ps(static_cast<float>((1 << bits) - 1)), eps = _mm256_set1_ps(1e-7f);
  const __m256 sign = _mm256_set1_ps(-0.0f), zero = _mm256_setzero_ps();
  const __m256 mask = _mm256_cmp_ps(_mm256_andnot_ps(sign, w_min), _mm256_andnot_ps(sign, w_max), _CMP_GT_OQ);
  // max(eps, x) is x < eps ? eps : x, std::max(x, eps) even for NaN.
  __m256 scale = _mm256_max_ps(eps, _mm256_div_ps(_mm256_sub_ps(w_max, w_min), n_bins));
  scale = _mm256_blendv_ps(_mm256_xor_ps(scale, sign), scale, mask);
  const __m256 edge = _mm256_blendv_ps(w_max, w_min, mask);
  const __m256 q0 = round_code(_mm256_div_ps(edge, scale), cpu);
  const __m256 nonzero = _mm256_cmp_ps(q0, zero, _CMP_NEQ_UQ);  // q0 != 0, true for NaN
  *scale_out = _mm256_blendv_ps(scale, _mm256_div_ps(edge, q0), nonzero);
  *bias_out = _mm256_blendv_ps(zero, edge, nonzero);
}

MB_AVX2 void quantize_groups(const float* w, int64_t groups, int gs, int bits, QuantKernel kernel, DType dtype,
                             uint8_t* codes, float* scales, float* biases) {
  const bool cpu = kernel == QuantKernel::kCpu;
  const float init_min = cpu ? std::numeric_limits<float>::infinity() : gpu_initial_min(dtype);
  const float init_max = cpu ? -std::numeric_limits<float>::infinity() : 0.0f;
  const __m256 zero = _mm256_setzero_ps(), top = _mm256_set1_ps(static_cast<float>((1 << bits) - 1));
  for (int64_t g0 = 0; g0 < groups; g0 += 8) {
    const int n = static_cast<int>(std::min<int64_t>(8, groups - g0));
    // Lanes past the last group get harmless values and are not stored.
    alignas(32) float mins[8] = {1, 1, 1, 1, 1, 1, 1, 1}, maxs[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    for (int j = 0; j < n; ++j) {
      const float* p = w + (g0 + j) * gs;
      // max(v, acc) and min(v, acc) return acc when v is NaN, which is how
      // the scalar loop ignores NaN.
      __m256 mx = _mm256_set1_ps(init_max), mn = _mm256_set1_ps(init_min);
      for (int i = 0; i < gs; i += 8) {
        const __m256 v = _mm256_loadu_ps(p + i);
        mx = _mm256_max_ps(v, mx);
        mn = _mm256_min_ps(v, mn);
      }
      maxs[j] = lane_max(mx);
      mins[j] = lane_min(mn);
    }
    __m256 vs, vb;
    group_params8(_mm256_load_ps(mins), _mm256_load_ps(maxs), bits, cpu, &vs, &vb);
    alignas(32) float s8[8], b8[8];
    _mm256_store_ps(s8, vs);
    _mm256_store_ps(b8, vb);
    for (int j = 0; j < n; ++j) {
      const int64_t g = g0 + j;
      scales[g] = s8[j];
      biases[g] = b8[j];
      const float* p = w + g * gs;
      uint8_t* c = codes + g * gs;
      const __m256 s = _mm256_set1_ps(s8[j]), b = _mm256_set1_ps(b8[j]);
      for (int i = 0; i < gs; i += 8) {
        __m256 q = round_code(_mm256_div_ps(_mm256_sub_ps(_mm256_loadu_ps(p + i), b), s), cpu);
        q = _mm256_max_ps(q, zero);  // q > 0 ? q : 0, so NaN gives 0 as in the scalar code
        q = _mm256_min_ps(q, top);   // q < top ? q : top
        store_codes8(q, c + i);
      }
    }
  }
}

// Eight codes to floats: one byte each, or two per byte low nibble first.
MB_AVX2 inline __m256 codes8_u8(const std::byte* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
MB_AVX2 inline __m256 codes8_u4(const std::byte* p) {
  int32_t word;
  std::memcpy(&word, p, 4);
  const __m128i bytes = _mm_cvtepu8_epi32(_mm_cvtsi32_si128(word));  // 4 bytes as 4 ints
  const __m128i lo = _mm_and_si128(bytes, _mm_set1_epi32(15)), hi = _mm_srli_epi32(bytes, 4);
  const __m256i codes = _mm256_set_m128i(_mm_unpackhi_epi32(lo, hi), _mm_unpacklo_epi32(lo, hi));
  return _mm256_cvtepi32_ps(codes);
}

MB_AVX2 void dequantize_packed(const std::byte* packed, int bits, int64_t groups, int gs, const float* scales,
                               const float* biases, float* out) {
  if (bits != 8 && bits != 4) {
    portable_table().dequantize_packed(packed, bits, groups, gs, scales, biases, out);
    return;
  }
  for (int64_t g = 0; g < groups; ++g) {
    const __m256 s = _mm256_set1_ps(scales[g]), b = _mm256_set1_ps(biases[g]);
    for (int64_t j = g * gs; j < (g + 1) * gs; j += 8) {
      const __m256 q = bits == 8 ? codes8_u8(packed + j) : codes8_u4(packed + j / 2);
      _mm256_storeu_ps(out + j, _mm256_add_ps(_mm256_mul_ps(q, s), b));
    }
  }
}

// Strips of 8·W columns keep their running sums in registers across all
// ranks, so A is read once per output row and the delta is stored once.
template <int W>
MB_AVX2 inline void lora_strip(const float* coef, const float* a, int64_t rank, int64_t n, int64_t i, float* delta) {
  __m256 acc[W];
  for (int j = 0; j < W; ++j) acc[j] = _mm256_setzero_ps();
  for (int64_t k = 0; k < rank; ++k) {
    const __m256 c = _mm256_set1_ps(coef[k]);
    const float* ak = a + k * n + i;
    for (int j = 0; j < W; ++j) acc[j] = _mm256_add_ps(acc[j], _mm256_mul_ps(c, _mm256_loadu_ps(ak + 8 * j)));
  }
  for (int j = 0; j < W; ++j) _mm256_storeu_ps(delta + i + 8 * j, acc[j]);
}

MB_AVX2 void lora_delta(const float* coef, const float* a, int64_t rank, int64_t n, float* delta) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) lora_strip<4>(coef, a, rank, n, i, delta);
  for (; i + 8 <= n; i += 8) lora_strip<1>(coef, a, rank, n, i, delta);
  // The last columns one by one, in the portable order (that kernel cannot
  // take a column range: A's rows are n apart).
  for (; i < n; ++i) {
    float d = 0.0f;
    for (int64_t k = 0; k < rank; ++k) d += coef[k] * a[k * n + i];
    delta[i] = d;
  }
}

MB_AVX2 void f16_to_f32_n(const void* in, float* out, int64_t n) {
  const auto* p = static_cast<const std::byte*>(in);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * i))));
  portable_table().f16_to_f32(p + 2 * i, out + i, n - i);
}

MB_AVX2 void f32_to_f16_n(const float* in, void* out, int64_t n) {
  auto* p = static_cast<std::byte*>(out);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p + 2 * i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  portable_table().f32_to_f16(in + i, p + 2 * i, n - i);
}

MB_AVX2 void round_f16(const float* in, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(in + i),
                                                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
  portable_table().round_f16(in + i, out + i, n - i);
}

// Four doubles per register are exactly the portable code's four lanes.
MB_AVX2 void retention_lanes(const float* w0, const float* target, const float* result, int64_t n, double lanes[4][4]) {
  __m256d dd = _mm256_loadu_pd(lanes[0]), ee = _mm256_loadu_pd(lanes[1]), cc = _mm256_loadu_pd(lanes[2]),
          dot = _mm256_loadu_pd(lanes[3]);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m256d b = _mm256_cvtps_pd(_mm_loadu_ps(w0 + i));
    const __m256d t = _mm256_cvtps_pd(_mm_loadu_ps(target + i));
    const __m256d r = _mm256_cvtps_pd(_mm_loadu_ps(result + i));
    const __m256d delta = _mm256_sub_pd(t, b), change = _mm256_sub_pd(r, b), error = _mm256_sub_pd(r, t);
    dd = _mm256_add_pd(dd, _mm256_mul_pd(delta, delta));
    ee = _mm256_add_pd(ee, _mm256_mul_pd(error, error));
    cc = _mm256_add_pd(cc, _mm256_mul_pd(change, change));
    dot = _mm256_add_pd(dot, _mm256_mul_pd(change, delta));
  }
  _mm256_storeu_pd(lanes[0], dd);
  _mm256_storeu_pd(lanes[1], ee);
  _mm256_storeu_pd(lanes[2], cc);
  _mm256_storeu_pd(lanes[3], dot);
  // i is a multiple of 4, so the tail's elements keep their lanes.
  portable_table().retention_lanes(w0 + i, target + i, result + i, n - i, lanes);
}

constexpr Table kAvx2 = {quantize_groups, dequantize_packed, lora_delta,     f16_to_f32_n,
                         f32_to_f16_n,    round_f16,         retention_lanes};

}  // namespace

// F16C from CPUID leaf 1 (ECX bit 29): clang 14's __builtin_cpu_supports
// does not know "f16c", so the fuzz build (clang) could not compile it.
bool cpu_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
}

const Table* avx2_table() {
  static const bool ok = __builtin_cpu_supports("avx2") && cpu_has_f16c();
  return ok ? &kAvx2 : nullptr;
}

}  // namespace mb::kernels

#else

namespace mb::kernels {
const Table* avx2_table() { return nullptr; }
}  // namespace mb::kernels

#endif
