// AVX-512 kernels: the portable kernels' summation order with the 16 lanes in
// one register (the AVX2 kernels split them over two), with the same fused
// multiply-adds, so every result is bit-identical to kernels_portable.cc and
// kernels_avx2.cc. Half the instructions per weight of the AVX2 kernels; the
// prefill tiles run one weight row against 8 tokens at once (16 live
// accumulators of 32 registers), so each unpacked row is loaded once per 8
// tokens. Compiled for AVX-512F/BW/VL through function attributes and used
// only when the CPU has them (kernels.cc).
#include <cmath>

#include "inference/kernels_impl.h"

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12's AVX-512 headers start some intrinsics from a deliberately
// undefined register (GCC bug 105593), which -Wuninitialized reports at every
// use in this file; nothing here reads an uninitialized value.
// clang has no -Wmaybe-uninitialized (and no such bug).
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#define MB_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,f16c,fma")))

namespace mb::inference::detail {
namespace {

// reduce16's tree: lanes l + 8, then l + 4, then (0+2) + (1+3).
MB_AVX512 inline float hsum16(__m512 t) {
  const __m256 v =
      _mm256_add_ps(_mm512_castps512_ps256(t), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(t), 1)));
  const __m128 u = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 w = _mm_add_ps(u, _mm_movehl_ps(u, u));
  return _mm_cvtss_f32(_mm_add_ss(w, _mm_shuffle_ps(w, w, 1)));
}

// 16 codes in prepared order as floats. 8-bit: 16 bytes. 4-bit: 8 bytes whose
// low nibbles are lanes 0-7 and high nibbles lanes 8-15 (kernels.h).
template <int Bits>
MB_AVX512 inline __m512 load_codes16(const uint8_t* row, int64_t c) {
  if constexpr (Bits == 8) {
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + c))));
  } else {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + c / 2));
    const __m512i w = _mm512_cvtepu8_epi32(_mm_unpacklo_epi64(b, b));  // the 8 bytes twice
    const __m512i shift = _mm512_set_epi32(4, 4, 4, 4, 4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srlv_epi32(w, shift), _mm512_set1_epi32(15)));
  }
}

template <int NR, int Bits>
MB_AVX512 void affine_rows(const AffineRow* rows, int64_t cols, int gs, const float* xp, const float* xsum, float* y) {
  __m512 t[NR];
  float b[NR];
#pragma GCC unroll 8
  for (int r = 0; r < NR; ++r) {
    t[r] = _mm512_setzero_ps();
    b[r] = 0;
  }
  const int64_t groups = cols / gs;
  for (int64_t g = 0; g < groups; ++g) {
    __m512 a[NR];
#pragma GCC unroll 8
    for (int r = 0; r < NR; ++r) a[r] = _mm512_setzero_ps();
    for (int64_t c = g * gs; c < (g + 1) * gs; c += 16) {
      const __m512 x = _mm512_loadu_ps(xp + c);
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) a[r] = _mm512_fmadd_ps(load_codes16<Bits>(rows[r].codes, c), x, a[r]);
    }
#pragma GCC unroll 8
    for (int r = 0; r < NR; ++r) {
      t[r] = _mm512_fmadd_ps(_mm512_set1_ps(rows[r].scale(g)), a[r], t[r]);
      b[r] = std::fma(rows[r].bias(g), xsum[g], b[r]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < NR; ++r) y[r] = hsum16(t[r]) + b[r];
}

MB_AVX512 void decode_q4(const AffineRow* rows, int n_rows, int64_t cols, int gs, const float* xp, const float* xsum,
                         float* y) {
  if (n_rows == 2)
    affine_rows<2, 4>(rows, cols, gs, xp, xsum, y);
  else
    affine_rows<1, 4>(rows, cols, gs, xp, xsum, y);
}

MB_AVX512 void decode_q8(const AffineRow* rows, int n_rows, int64_t cols, int gs, const float* xp, const float* xsum,
                         float* y) {
  if (n_rows == 2)
    affine_rows<2, 8>(rows, cols, gs, xp, xsum, y);
  else
    affine_rows<1, 8>(rows, cols, gs, xp, xsum, y);
}

template <FloatType T>
MB_AVX512 inline __m512 load16(const std::byte* row, int64_t i) {
  if constexpr (T == FloatType::kF32) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + i);
  } else if constexpr (T == FloatType::kBF16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * i)));
  }
}

// NR rows of type T against one x, or one row (NR = 1) against NT tokens.
template <FloatType T, int NR, int NT>
MB_AVX512 void float_rows(const std::byte* const* rows, int64_t cols, const float* x, int64_t x_stride, float* y,
                          int64_t y_stride) {
  static_assert(NR == 1 || NT == 1);
  constexpr int N = NR * NT;
  __m512 t[N];
#pragma GCC unroll 8
  for (int i = 0; i < N; ++i) t[i] = _mm512_setzero_ps();
  int64_t c = 0;
  for (; c + 16 <= cols; c += 16) {
    if constexpr (NT == 1) {
      const __m512 xv = _mm512_loadu_ps(x + c);
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) t[r] = _mm512_fmadd_ps(load16<T>(rows[r], c), xv, t[r]);
    } else {
      const __m512 w = load16<T>(rows[0], c);
#pragma GCC unroll 8
      for (int k = 0; k < NT; ++k) t[k] = _mm512_fmadd_ps(w, _mm512_loadu_ps(x + k * x_stride + c), t[k]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < N; ++i) {
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, t[i]);
    const std::byte* row = rows[NT == 1 ? i : 0];
    const float* xi = x + (NT == 1 ? 0 : i * x_stride);
    for (int l = 0; c + l < cols; ++l) lanes[l] = std::fma(load_float(row, T, c + l), xi[c + l], lanes[l]);
    y[i * y_stride] = reduce16(lanes);
  }
}

template <FloatType T>
MB_AVX512 void decode_float_t(const std::byte* const* rows, int n_rows, int64_t cols, const float* x, float* y) {
  if (n_rows == 2)
    float_rows<T, 2, 1>(rows, cols, x, 0, y, 1);
  else
    float_rows<T, 1, 1>(rows, cols, x, 0, y, 1);
}

MB_AVX512 void decode_float(const std::byte* const* rows, int n_rows, FloatType t, int64_t cols, const float* x,
                            float* y) {
  switch (t) {
    case FloatType::kF32:
      return decode_float_t<FloatType::kF32>(rows, n_rows, cols, x, y);
    case FloatType::kBF16:
      return decode_float_t<FloatType::kBF16>(rows, n_rows, cols, x, y);
    case FloatType::kF16:
      return decode_float_t<FloatType::kF16>(rows, n_rows, cols, x, y);
  }
}

template <int NT>
MB_AVX512 void tile_affine_n(const float* qf, const float* scales, const float* biases, int64_t cols, int gs,
                             const float* xp, int64_t xp_stride, const float* xsum, int64_t xsum_stride, float* y,
                             int64_t y_stride) {
  __m512 t[NT];
  float b[NT];
#pragma GCC unroll 8
  for (int k = 0; k < NT; ++k) {
    t[k] = _mm512_setzero_ps();
    b[k] = 0;
  }
  const int64_t groups = cols / gs;
  for (int64_t g = 0; g < groups; ++g) {
    __m512 a[NT];
#pragma GCC unroll 8
    for (int k = 0; k < NT; ++k) a[k] = _mm512_setzero_ps();
    for (int64_t c = g * gs; c < (g + 1) * gs; c += 16) {
      const __m512 q = _mm512_loadu_ps(qf + c);
#pragma GCC unroll 8
      for (int k = 0; k < NT; ++k) a[k] = _mm512_fmadd_ps(q, _mm512_loadu_ps(xp + k * xp_stride + c), a[k]);
    }
    const __m512 s = _mm512_set1_ps(scales[g]);
#pragma GCC unroll 8
    for (int k = 0; k < NT; ++k) {
      t[k] = _mm512_fmadd_ps(s, a[k], t[k]);
      b[k] = std::fma(biases[g], xsum[k * xsum_stride + g], b[k]);
    }
  }
#pragma GCC unroll 8
  for (int k = 0; k < NT; ++k) y[k * y_stride] = hsum16(t[k]) + b[k];
}

MB_AVX512 void tile_affine(const float* qf, const float* scales, const float* biases, int64_t cols, int gs,
                           const float* xp, int64_t xp_stride, const float* xsum, int64_t xsum_stride, int64_t n_tok,
                           float* y, int64_t y_stride) {
  int64_t k = 0;
  for (; k + 8 <= n_tok; k += 8)
    tile_affine_n<8>(qf, scales, biases, cols, gs, xp + k * xp_stride, xp_stride, xsum + k * xsum_stride, xsum_stride,
                     y + k * y_stride, y_stride);
  for (; k + 4 <= n_tok; k += 4)
    tile_affine_n<4>(qf, scales, biases, cols, gs, xp + k * xp_stride, xp_stride, xsum + k * xsum_stride, xsum_stride,
                     y + k * y_stride, y_stride);
  for (; k < n_tok; ++k)
    tile_affine_n<1>(qf, scales, biases, cols, gs, xp + k * xp_stride, xp_stride, xsum + k * xsum_stride, xsum_stride,
                     y + k * y_stride, y_stride);
}

MB_AVX512 void tile_float(const float* w, int64_t cols, const float* x, int64_t x_stride, int64_t n_tok, float* y,
                          int64_t y_stride) {
  const std::byte* row = reinterpret_cast<const std::byte*>(w);
  int64_t k = 0;
  for (; k + 8 <= n_tok; k += 8)
    float_rows<FloatType::kF32, 1, 8>(&row, cols, x + k * x_stride, x_stride, y + k * y_stride, y_stride);
  for (; k + 4 <= n_tok; k += 4)
    float_rows<FloatType::kF32, 1, 4>(&row, cols, x + k * x_stride, x_stride, y + k * y_stride, y_stride);
  for (; k < n_tok; ++k)
    float_rows<FloatType::kF32, 1, 1>(&row, cols, x + k * x_stride, x_stride, y + k * y_stride, y_stride);
}

MB_AVX512 float dot(const float* a, const float* b, int64_t n) {
  const std::byte* row = reinterpret_cast<const std::byte*>(a);
  float y;
  float_rows<FloatType::kF32, 1, 1>(&row, n, b, 0, &y, 1);
  return y;
}

MB_AVX512 void unpack_q4(const uint8_t* p, int64_t n, float* out) {
  for (int64_t c = 0; c < n; c += 16) _mm512_storeu_ps(out + c, load_codes16<4>(p, c));
}

MB_AVX512 void unpack_q8(const uint8_t* p, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, load_codes16<8>(p, i));
  for (; i < n; ++i) out[i] = static_cast<float>(p[i]);
}

MB_AVX512 void accumulate(float* t, const float* w, const float* x, int64_t n) {
  __m512 v = _mm512_loadu_ps(t);
  for (int64_t c = 0; c < n; c += 16) v = _mm512_fmadd_ps(_mm512_loadu_ps(w + c), _mm512_loadu_ps(x + c), v);
  _mm512_storeu_ps(t, v);
}

}  // namespace

const Kernels* avx512_kernels() {
  static const bool supported = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                                __builtin_cpu_supports("avx512vl") && avx2_kernels() != nullptr;
  // The integer products are AVX2's (exact integer sums, so the same bits;
  // a VNNI form would need a machine with it to be tested on).
  static const Kernels k{decode_q4,
                         decode_q8,
                         decode_float,
                         tile_affine,
                         tile_float,
                         dot,
                         unpack_q4,
                         unpack_q8,
                         accumulate,
                         avx2_kernels() ? avx2_kernels()->int8_q4 : nullptr,
                         avx2_kernels() ? avx2_kernels()->int8_q8 : nullptr};
  return supported ? &k : nullptr;
}

}  // namespace mb::inference::detail

#else

namespace mb::inference::detail {
const Kernels* avx512_kernels() { return nullptr; }
}  // namespace mb::inference::detail

#endif
