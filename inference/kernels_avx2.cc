// AVX2 kernels: the portable kernels' summation order, 8 lanes per register
// (lanes 0-7 and 8-15 of the 16-lane order in two registers), with the same
// fused multiply-adds, so every result is bit-identical to
// kernels_portable.cc. Compiled for AVX2+FMA+F16C through function attributes
// and used only when the CPU has all three.
#include <cmath>

#include "inference/kernels_impl.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>

#define MB_AVX2 __attribute__((target("avx2,f16c,fma")))

namespace mb::inference::detail {
namespace {

MB_AVX2 inline float hsum16(__m256 lo, __m256 hi) {
  __m256 v = _mm256_add_ps(lo, hi);
  __m128 u = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  __m128 w = _mm_add_ps(u, _mm_movehl_ps(u, u));
  return _mm_cvtss_f32(_mm_add_ss(w, _mm_shuffle_ps(w, w, 1)));
}

MB_AVX2 inline __m256i load_u8x8(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

template <int NR, int Bits>
MB_AVX2 void affine_rows(const AffineRow* rows, int64_t cols, int gs, const float* xp, const float* xsum, float* y) {
  const __m256i mask = _mm256_set1_epi32(15);
  __m256 t0[NR], t1[NR];
  float b[NR];
#pragma GCC unroll 8
  for (int r = 0; r < NR; ++r) {
    t0[r] = _mm256_setzero_ps();
    t1[r] = _mm256_setzero_ps();
    b[r] = 0;
  }
  const int64_t groups = cols / gs;
  for (int64_t g = 0; g < groups; ++g) {
    __m256 a0[NR], a1[NR];
#pragma GCC unroll 8
    for (int r = 0; r < NR; ++r) a0[r] = a1[r] = _mm256_setzero_ps();
    for (int64_t c = g * gs; c < (g + 1) * gs; c += 16) {
      const __m256 x0 = _mm256_loadu_ps(xp + c);
      const __m256 x1 = _mm256_loadu_ps(xp + c + 8);
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) {
        __m256 q0, q1;
        if constexpr (Bits == 4) {
          const __m256i w = load_u8x8(rows[r].codes + c / 2);
          q0 = _mm256_cvtepi32_ps(_mm256_and_si256(w, mask));
          q1 = _mm256_cvtepi32_ps(_mm256_srli_epi32(w, 4));
        } else {
          q0 = _mm256_cvtepi32_ps(load_u8x8(rows[r].codes + c));
          q1 = _mm256_cvtepi32_ps(load_u8x8(rows[r].codes + c + 8));
        }
        a0[r] = _mm256_fmadd_ps(q0, x0, a0[r]);
        a1[r] = _mm256_fmadd_ps(q1, x1, a1[r]);
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < NR; ++r) {
      const __m256 s = _mm256_set1_ps(rows[r].scale(g));
      t0[r] = _mm256_fmadd_ps(s, a0[r], t0[r]);
      t1[r] = _mm256_fmadd_ps(s, a1[r], t1[r]);
      b[r] = std::fma(rows[r].bias(g), xsum[g], b[r]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < NR; ++r) y[r] = hsum16(t0[r], t1[r]) + b[r];
}

MB_AVX2 void decode_q4(const AffineRow* rows, int n_rows, int64_t cols, int gs, const float* xp, const float* xsum,
                       float* y) {
  if (n_rows == 2)
    affine_rows<2, 4>(rows, cols, gs, xp, xsum, y);
  else
    affine_rows<1, 4>(rows, cols, gs, xp, xsum, y);
}

MB_AVX2 void decode_q8(const AffineRow* rows, int n_rows, int64_t cols, int gs, const float* xp, const float* xsum,
                       float* y) {
  if (n_rows == 2)
    affine_rows<2, 8>(rows, cols, gs, xp, xsum, y);
  else
    affine_rows<1, 8>(rows, cols, gs, xp, xsum, y);
}

template <FloatType T>
MB_AVX2 inline __m256 load8(const std::byte* row, int64_t i) {
  if constexpr (T == FloatType::kF32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + i);
  } else if constexpr (T == FloatType::kBF16) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  } else {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i)));
  }
}

// NR rows of type T against one x, or one row (NR = 1) against NT tokens.
template <FloatType T, int NR, int NT>
MB_AVX2 void float_rows(const std::byte* const* rows, int64_t cols, const float* x, int64_t x_stride, float* y,
                        int64_t y_stride) {
  static_assert(NR == 1 || NT == 1);
  constexpr int N = NR * NT;
  __m256 t0[N], t1[N];
#pragma GCC unroll 8
  for (int i = 0; i < N; ++i) t0[i] = t1[i] = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 16 <= cols; c += 16) {
    if constexpr (NT == 1) {
      const __m256 x0 = _mm256_loadu_ps(x + c), x1 = _mm256_loadu_ps(x + c + 8);
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) {
        t0[r] = _mm256_fmadd_ps(load8<T>(rows[r], c), x0, t0[r]);
        t1[r] = _mm256_fmadd_ps(load8<T>(rows[r], c + 8), x1, t1[r]);
      }
    } else {
      const __m256 w0 = load8<T>(rows[0], c), w1 = load8<T>(rows[0], c + 8);
#pragma GCC unroll 8
      for (int k = 0; k < NT; ++k) {
        t0[k] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + k * x_stride + c), t0[k]);
        t1[k] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + k * x_stride + c + 8), t1[k]);
      }
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < N; ++i) {
    alignas(32) float t[16];
    _mm256_store_ps(t, t0[i]);
    _mm256_store_ps(t + 8, t1[i]);
    const std::byte* row = rows[NT == 1 ? i : 0];
    const float* xi = x + (NT == 1 ? 0 : i * x_stride);
    for (int l = 0; c + l < cols; ++l) t[l] = std::fma(load_float(row, T, c + l), xi[c + l], t[l]);
    y[i * y_stride] = reduce16(t);
  }
}

template <FloatType T>
MB_AVX2 void decode_float_t(const std::byte* const* rows, int n_rows, int64_t cols, const float* x, float* y) {
  if (n_rows == 2)
    float_rows<T, 2, 1>(rows, cols, x, 0, y, 1);
  else
    float_rows<T, 1, 1>(rows, cols, x, 0, y, 1);
}

MB_AVX2 void decode_float(const std::byte* const* rows, int n_rows, FloatType t, int64_t cols, const float* x,
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
MB_AVX2 void tile_affine_n(const float* qf, const float* scales, const float* biases, int64_t cols, int gs,
                           const float* xp, int64_t xp_stride, const float* xsum, int64_t xsum_stride, float* y,
                           int64_t y_stride) {
  __m256 t0[NT], t1[NT];
  float b[NT];
#pragma GCC unroll 8
  for (int k = 0; k < NT; ++k) {
    t0[k] = t1[k] = _mm256_setzero_ps();
    b[k] = 0;
  }
  const int64_t groups = cols / gs;
  for (int64_t g = 0; g < groups; ++g) {
    __m256 a0[NT], a1[NT];
#pragma GCC unroll 8
    for (int k = 0; k < NT; ++k) a0[k] = a1[k] = _mm256_setzero_ps();
    for (int64_t c = g * gs; c < (g + 1) * gs; c += 16) {
      const __m256 q0 = _mm256_loadu_ps(qf + c), q1 = _mm256_loadu_ps(qf + c + 8);
#pragma GCC unroll 8
      for (int k = 0; k < NT; ++k) {
        a0[k] = _mm256_fmadd_ps(q0, _mm256_loadu_ps(xp + k * xp_stride + c), a0[k]);
        a1[k] = _mm256_fmadd_ps(q1, _mm256_loadu_ps(xp + k * xp_stride + c + 8), a1[k]);
      }
    }
    const __m256 s = _mm256_set1_ps(scales[g]);
#pragma GCC unroll 8
    for (int k = 0; k < NT; ++k) {
      t0[k] = _mm256_fmadd_ps(s, a0[k], t0[k]);
      t1[k] = _mm256_fmadd_ps(s, a1[k], t1[k]);
      b[k] = std::fma(biases[g], xsum[k * xsum_stride + g], b[k]);
    }
  }
#pragma GCC unroll 8
  for (int k = 0; k < NT; ++k) y[k * y_stride] = hsum16(t0[k], t1[k]) + b[k];
}

MB_AVX2 void tile_affine(const float* qf, const float* scales, const float* biases, int64_t cols, int gs,
                         const float* xp, int64_t xp_stride, const float* xsum, int64_t xsum_stride, int64_t n_tok,
                         float* y, int64_t y_stride) {
  int64_t k = 0;
  for (; k + 4 <= n_tok; k += 4)
    tile_affine_n<4>(qf, scales, biases, cols, gs, xp + k * xp_stride, xp_stride, xsum + k * xsum_stride, xsum_stride,
                     y + k * y_stride, y_stride);
  for (; k < n_tok; ++k)
    tile_affine_n<1>(qf, scales, biases, cols, gs, xp + k * xp_stride, xp_stride, xsum + k * xsum_stride, xsum_stride,
                     y + k * y_stride, y_stride);
}

MB_AVX2 void tile_float(const float* w, int64_t cols, const float* x, int64_t x_stride, int64_t n_tok, float* y,
                        int64_t y_stride) {
  const std::byte* row = reinterpret_cast<const std::byte*>(w);
  int64_t k = 0;
  for (; k + 4 <= n_tok; k += 4)
    float_rows<FloatType::kF32, 1, 4>(&row, cols, x + k * x_stride, x_stride, y + k * y_stride, y_stride);
  for (; k < n_tok; ++k)
    float_rows<FloatType::kF32, 1, 1>(&row, cols, x + k * x_stride, x_stride, y + k * y_stride, y_stride);
}

MB_AVX2 float dot(const float* a, const float* b, int64_t n) {
  const std::byte* row = reinterpret_cast<const std::byte*>(a);
  float y;
  float_rows<FloatType::kF32, 1, 1>(&row, n, b, 0, &y, 1);
  return y;
}

MB_AVX2 void unpack_q4(const uint8_t* p, int64_t n, float* out) {
  const __m256i mask = _mm256_set1_epi32(15);
  for (int64_t c = 0; c < n; c += 16) {
    const __m256i w = load_u8x8(p + c / 2);
    _mm256_storeu_ps(out + c, _mm256_cvtepi32_ps(_mm256_and_si256(w, mask)));
    _mm256_storeu_ps(out + c + 8, _mm256_cvtepi32_ps(_mm256_srli_epi32(w, 4)));
  }
}

MB_AVX2 void unpack_q8(const uint8_t* p, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtepi32_ps(load_u8x8(p + i)));
  for (; i < n; ++i) out[i] = static_cast<float>(p[i]);
}

MB_AVX2 void accumulate(float* t, const float* w, const float* x, int64_t n) {
  __m256 t0 = _mm256_loadu_ps(t), t1 = _mm256_loadu_ps(t + 8);
  for (int64_t c = 0; c < n; c += 16) {
    t0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c), _mm256_loadu_ps(x + c), t0);
    t1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c + 8), _mm256_loadu_ps(x + c + 8), t1);
  }
  _mm256_storeu_ps(t, t0);
  _mm256_storeu_ps(t + 8, t1);
}

// 32 codes of a packed 4-bit row (16 bytes) in the int8 order: the low
// nibbles, then the high nibbles (kernels_int8.cc).
MB_AVX2 inline __m256i codes32_q4(const uint8_t* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i m = _mm_set1_epi8(15);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
}

// reduce8 of the lanes of v.
MB_AVX2 inline float hsum8(__m256 v) {
  __m128 u = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  __m128 w = _mm_add_ps(u, _mm_movehl_ps(u, u));
  return _mm_cvtss_f32(_mm_add_ss(w, _mm_shuffle_ps(w, w, 1)));
}

// NR rows against NT tokens, the arithmetic of kernels_int8.cc: maddubs
// then madd gives lane l the four products of positions 4l..4l+3 of each
// 32 (exact in 16 bits: 4-bit codes times int8, or |q - 128| times int8).
template <int Bits, int NR, int NT>
MB_AVX2 void int8_tile(const AffineRow* rows, int64_t cols, int gs, const Int8X* x, float* y, int64_t y_stride) {
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  __m256 acc[NR][NT];
  float b[NR][NT];
#pragma GCC unroll 8
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 8
    for (int k = 0; k < NT; ++k) {
      acc[r][k] = _mm256_setzero_ps();
      b[r][k] = 0;
    }
  const int64_t groups = cols / gs;
  for (int64_t g = 0; g < groups; ++g) {
    __m256i isum[NR][NT];
#pragma GCC unroll 8
    for (int r = 0; r < NR; ++r)
#pragma GCC unroll 8
      for (int k = 0; k < NT; ++k) isum[r][k] = _mm256_setzero_si256();
    for (int64_t c = g * gs; c < (g + 1) * gs; c += 32) {
      __m256i wq[NR], wa[NR];  // codes (q - 128 for byte codes) and their magnitudes
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) {
        if constexpr (Bits == 4) {
          wq[r] = codes32_q4(rows[r].codes + c / 2);
        } else {
          wq[r] = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[r].codes + c)), flip);
          wa[r] = _mm256_abs_epi8(wq[r]);
        }
      }
#pragma GCC unroll 8
      for (int k = 0; k < NT; ++k) {
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[k].q + c));
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) {
          // 4-bit pair sums (<= 2 * 15 * 127) add up in 16 bits over a whole
          // group of up to 128 (4 * 3810 < 32768), widened once per group;
          // byte-code pair sums (<= 32512) are widened at once.
          if constexpr (Bits == 4)
            isum[r][k] = _mm256_add_epi16(isum[r][k], _mm256_maddubs_epi16(wq[r], xv));
          else
            isum[r][k] = _mm256_add_epi32(
                isum[r][k], _mm256_madd_epi16(_mm256_maddubs_epi16(wa[r], _mm256_sign_epi8(xv, wq[r])), ones));
        }
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < NR; ++r) {
      const float s = rows[r].scale(g), bias = rows[r].bias(g);
#pragma GCC unroll 8
      for (int k = 0; k < NT; ++k) {
        __m256i i;
        if constexpr (Bits == 4)
          i = _mm256_madd_epi16(isum[r][k], ones);
        else
          i = _mm256_add_epi32(isum[r][k], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[k].lanes + 8 * g)));
        acc[r][k] = _mm256_fmadd_ps(_mm256_set1_ps(s * x[k].d[g]), _mm256_cvtepi32_ps(i), acc[r][k]);
        b[r][k] = std::fma(bias, x[k].xsum[g], b[r][k]);
      }
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 8
    for (int k = 0; k < NT; ++k) y[k * y_stride + r] = hsum8(acc[r][k]) + b[r][k];
}

template <int Bits, int NR>
MB_AVX2 void int8_rows_nr(const AffineRow* rows, int64_t cols, int gs, const Int8X* x, int n_tok, float* y,
                          int64_t y_stride) {
  int k = 0;
  if (k + 4 <= n_tok) {
    int8_tile<Bits, NR, 4>(rows, cols, gs, x + k, y + k * y_stride, y_stride);
    k += 4;
  }
  for (; k + 2 <= n_tok; k += 2) int8_tile<Bits, NR, 2>(rows, cols, gs, x + k, y + k * y_stride, y_stride);
  if (k < n_tok) int8_tile<Bits, NR, 1>(rows, cols, gs, x + k, y + k * y_stride, y_stride);
}

template <int Bits>
MB_AVX2 void int8_rows(const AffineRow* rows, int n_rows, int64_t cols, int gs, const Int8X* x, int n_tok, float* y,
                       int64_t y_stride) {
  if (n_rows == 2)
    int8_rows_nr<Bits, 2>(rows, cols, gs, x, n_tok, y, y_stride);
  else
    int8_rows_nr<Bits, 1>(rows, cols, gs, x, n_tok, y, y_stride);
}

MB_AVX2 void int8_q4(const AffineRow* rows, int n_rows, int64_t cols, int gs, const Int8X* x, int n_tok, float* y,
                     int64_t y_stride) {
  int8_rows<4>(rows, n_rows, cols, gs, x, n_tok, y, y_stride);
}

MB_AVX2 void int8_q8(const AffineRow* rows, int n_rows, int64_t cols, int gs, const Int8X* x, int n_tok, float* y,
                     int64_t y_stride) {
  int8_rows<8>(rows, n_rows, cols, gs, x, n_tok, y, y_stride);
}

}  // namespace

// F16C from CPUID leaf 1 (ECX bit 29): clang 14's __builtin_cpu_supports
// does not know "f16c".
bool cpu_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
}

const Kernels* avx2_kernels() {
  static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
  static const Kernels k{decode_q4, decode_q8, decode_float, tile_affine, tile_float, dot,
                         unpack_q4, unpack_q8, accumulate,   int8_q4,     int8_q8};
  return supported ? &k : nullptr;
}

}  // namespace mb::inference::detail

#else

namespace mb::inference::detail {
const Kernels* avx2_kernels() { return nullptr; }
}  // namespace mb::inference::detail

#endif
