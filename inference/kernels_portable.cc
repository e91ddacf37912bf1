// Portable kernels: plain C++ written lane by lane, the definition of the
// summation order that the SIMD kernels reproduce. Every multiply-add is one
// fused (singly rounded) std::fma, as the FMA instructions of the SIMD path
// compute it. (On CPUs without FMA, std::fma is a slow library call; they
// are not a target for speed.)
#include <cmath>
#include <cstring>

#include "inference/kernels_impl.h"

namespace mb::inference::detail {
namespace {

void affine_row_q4(const AffineRow& row, int64_t cols, int gs, const float* xp, const float* xsum, float* y) {
  float t[16] = {};
  float b = 0;
  const int64_t groups = cols / gs;
  for (int64_t g = 0; g < groups; ++g) {
    float a[16] = {};
    for (int64_t c = g * gs; c < (g + 1) * gs; c += 16) {
      const uint8_t* bytes = row.codes + c / 2;
      for (int l = 0; l < 8; ++l) a[l] = std::fma(static_cast<float>(bytes[l] & 15), xp[c + l], a[l]);
      for (int l = 0; l < 8; ++l) a[8 + l] = std::fma(static_cast<float>(bytes[l] >> 4), xp[c + 8 + l], a[8 + l]);
    }
    const float scale = row.scale(g);
    for (int l = 0; l < 16; ++l) t[l] = std::fma(scale, a[l], t[l]);
    b = std::fma(row.bias(g), xsum[g], b);
  }
  *y = reduce16(t) + b;
}

void affine_row_q8(const AffineRow& row, int64_t cols, int gs, const float* xp, const float* xsum, float* y) {
  float t[16] = {};
  float b = 0;
  const int64_t groups = cols / gs;
  for (int64_t g = 0; g < groups; ++g) {
    float a[16] = {};
    for (int64_t c = g * gs; c < (g + 1) * gs; c += 16)
      for (int l = 0; l < 16; ++l) a[l] = std::fma(static_cast<float>(row.codes[c + l]), xp[c + l], a[l]);
    const float scale = row.scale(g);
    for (int l = 0; l < 16; ++l) t[l] = std::fma(scale, a[l], t[l]);
    b = std::fma(row.bias(g), xsum[g], b);
  }
  *y = reduce16(t) + b;
}

void decode_q4(const AffineRow* rows, int n_rows, int64_t cols, int gs, const float* xp, const float* xsum, float* y) {
  for (int i = 0; i < n_rows; ++i) affine_row_q4(rows[i], cols, gs, xp, xsum, y + i);
}

void decode_q8(const AffineRow* rows, int n_rows, int64_t cols, int gs, const float* xp, const float* xsum, float* y) {
  for (int i = 0; i < n_rows; ++i) affine_row_q8(rows[i], cols, gs, xp, xsum, y + i);
}

template <typename Load>
float float_row(Load load, int64_t cols, const float* x) {
  float t[16] = {};
  int64_t c = 0;
  for (; c + 16 <= cols; c += 16)
    for (int l = 0; l < 16; ++l) t[l] = std::fma(load(c + l), x[c + l], t[l]);
  for (int l = 0; c + l < cols; ++l) t[l] = std::fma(load(c + l), x[c + l], t[l]);
  return reduce16(t);
}

float row_value_dot(const std::byte* row, FloatType t, int64_t cols, const float* x) {
  switch (t) {
    case FloatType::kF32:
      return float_row([row](int64_t i) { return load_float(row, FloatType::kF32, i); }, cols, x);
    case FloatType::kBF16:
      return float_row([row](int64_t i) { return load_float(row, FloatType::kBF16, i); }, cols, x);
    case FloatType::kF16:
      return float_row([row](int64_t i) { return load_float(row, FloatType::kF16, i); }, cols, x);
  }
  return 0;
}

void decode_float(const std::byte* const* rows, int n_rows, FloatType t, int64_t cols, const float* x, float* y) {
  for (int i = 0; i < n_rows; ++i) y[i] = row_value_dot(rows[i], t, cols, x);
}

void tile_affine(const float* qf, const float* scales, const float* biases, int64_t cols, int gs, const float* xp,
                 int64_t xp_stride, const float* xsum, int64_t xsum_stride, int64_t n_tok, float* y, int64_t y_stride) {
  const int64_t groups = cols / gs;
  for (int64_t tok = 0; tok < n_tok; ++tok) {
    const float* x = xp + tok * xp_stride;
    const float* xs = xsum + tok * xsum_stride;
    float t[16] = {};
    float b = 0;
    for (int64_t g = 0; g < groups; ++g) {
      float a[16] = {};
      for (int64_t c = g * gs; c < (g + 1) * gs; c += 16)
        for (int l = 0; l < 16; ++l) a[l] = std::fma(qf[c + l], x[c + l], a[l]);
      for (int l = 0; l < 16; ++l) t[l] = std::fma(scales[g], a[l], t[l]);
      b = std::fma(biases[g], xs[g], b);
    }
    y[tok * y_stride] = reduce16(t) + b;
  }
}

void tile_float(const float* w, int64_t cols, const float* x, int64_t x_stride, int64_t n_tok, float* y,
                int64_t y_stride) {
  for (int64_t tok = 0; tok < n_tok; ++tok)
    y[tok * y_stride] = float_row([w](int64_t i) { return w[i]; }, cols, x + tok * x_stride);
}

float dot(const float* a, const float* b, int64_t n) {
  return float_row([a](int64_t i) { return a[i]; }, n, b);
}

void unpack_q4(const uint8_t* p, int64_t n, float* out) {
  for (int64_t c = 0; c < n; c += 16) {
    const uint8_t* b = p + c / 2;
    for (int l = 0; l < 8; ++l) out[c + l] = static_cast<float>(b[l] & 15);
    for (int l = 0; l < 8; ++l) out[c + 8 + l] = static_cast<float>(b[l] >> 4);
  }
}

void unpack_q8(const uint8_t* p, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(p[i]);
}

void accumulate(float* t, const float* w, const float* x, int64_t n) {
  for (int64_t c = 0; c < n; c += 16)
    for (int l = 0; l < 16; ++l) t[l] = std::fma(w[c + l], x[c + l], t[l]);
}

}  // namespace

const Kernels& portable_kernels() {
  static const Kernels k{decode_q4, decode_q8, decode_float, tile_affine,      tile_float,      dot,
                         unpack_q4, unpack_q8, accumulate,   portable_int8_q4, portable_int8_q8};
  return k;
}

}  // namespace mb::inference::detail
