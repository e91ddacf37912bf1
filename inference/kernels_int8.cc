// Integer products over affine-quantized weights: the activations are
// quantized to int8, one step per weight group, and each group's dot product
// is an exact integer sum, as llama.cpp does with its Q8 activations. With
// MLX's affine algebra (sum of w*x over a group = s*sum(q*x) + b*sum(x)):
//
//   y = sum over groups g of  s_g * d_g * sum(q * xq)  +  b_g * xsum_g
//
// where xq = round(x / d_g), d_g = max |x| / 127 over the group, and xsum_g
// is the exact float sum of x (the bias term keeps full precision). This
// file is the definition; the SIMD kernels reproduce it bit for bit.
//
// The int8 order. 8-bit codes (and 2/3/5/6-bit rows unpacked to one byte per
// code) are in natural order. 4-bit rows are read 32 values (16 packed bytes)
// at a time as the 16 low nibbles, then the 16 high nibbles: positions 0-15
// hold elements 0, 2, ..., 30 and 16-31 hold 1, 3, ..., 31. x is quantized
// into the same order, so that unpacking is one shift and one mask.
//
// The arithmetic. Lane l (0-7) of group g is the exact integer
//   I_l = sum of q_p * xq_p over the group's positions p with (p % 32) / 4 == l
// (the layout of AVX2's maddubs + madd, and of four-byte dot products on
// other ISAs). Then, in float, for g in order:
//   f = s_g * d_g;  acc_l = fma(f, float(I_l), acc_l);  b = fma(b_g, xsum_g, b)
// and y = reduce8(acc) + b. Integer sums are exact in any order and
// float(I_l) is exact (|I_l| <= 4 * 4 * 255 * 127 < 2^24 for groups of up
// to 128), so the only roundings are these float steps: the result does not
// depend on the instruction set, the thread count, or how rows and tokens
// are tiled.
//
// Byte codes are stored unsigned (0-255) and the int8 product of two signed
// bytes must not overflow AVX2's 16-bit pair sums. The SIMD kernels
// therefore multiply q - 128 (|q - 128| <= 128, pair sums <= 32512) and add
// back 128 * sum(xq), which quantize_int8 precomputes per lane.
#include <cfloat>
#include <cmath>
#include <cstdlib>

#include "inference/kernels_impl.h"

namespace mb::inference::detail {

void quantize_int8(const float* x, int64_t cols, int gs, int bits, int8_t* q, float* d, int32_t* lanes, float* xsum) {
  const int64_t groups = cols / gs;
  for (int64_t g = 0; g < groups; ++g) {
    const float* xg = x + g * gs;
    float amax = 0, sum = 0;
    bool finite = true;
    for (int i = 0; i < gs; ++i) {
      finite = finite && std::isfinite(xg[i]);
      amax = std::max(amax, std::fabs(xg[i]));
      sum += xg[i];
    }
    const float step = amax / 127;
    // Below FLT_MIN, 1 / step would overflow; such a group is all zeros.
    const float inv = step >= FLT_MIN ? 1 / step : 0;
    xsum[g] = sum;
    int32_t* lane = lanes + 8 * g;
    for (int l = 0; l < 8; ++l) lane[l] = 0;
    int8_t* qg = q + g * gs;
    // A non-finite activation has no int8 code: the group's products become
    // NaN (f = NaN), as the float path's would, rather than a silent zero.
    d[g] = finite ? step : std::nanf("");
    for (int p = 0; p < gs && !finite; ++p) qg[p] = 0;
    for (int p = 0; p < gs && finite; ++p) {
      // Position p of a 32-value block holds element e (the int8 order).
      const int block = p / 32 * 32, within = p % 32;
      const int e = bits == 4 ? block + (within < 16 ? 2 * within : 2 * (within - 16) + 1) : p;
      // Round half to even, as the SIMD conversion does by default.
      const auto v = static_cast<int8_t>(std::nearbyint(xg[e] * inv));
      qg[p] = v;
      lane[within / 4] += 128 * v;
    }
  }
}

namespace {

// Code at int8-order position p of a row.
template <int Bits>
int code_at(const uint8_t* codes, int64_t p) {
  if constexpr (Bits == 4) {
    const uint8_t byte = codes[p / 32 * 16 + p % 16];
    return p % 32 < 16 ? byte & 15 : byte >> 4;
  } else {
    return codes[p];
  }
}

template <int Bits>
float int8_row(const AffineRow& row, int64_t cols, int gs, const Int8X& x) {
  float acc[8] = {};
  float b = 0;
  const int64_t groups = cols / gs;
  for (int64_t g = 0; g < groups; ++g) {
    int32_t lane[8] = {};
    for (int64_t p = g * gs; p < (g + 1) * gs; ++p) lane[p % 32 / 4] += code_at<Bits>(row.codes, p) * x.q[p];
    const float f = row.scale(g) * x.d[g];
    for (int l = 0; l < 8; ++l) acc[l] = std::fma(f, static_cast<float>(lane[l]), acc[l]);
    b = std::fma(row.bias(g), x.xsum[g], b);
  }
  return reduce8(acc) + b;
}

template <int Bits>
void int8_rows(const AffineRow* rows, int n_rows, int64_t cols, int gs, const Int8X* x, int n_tok, float* y,
               int64_t y_stride) {
  for (int k = 0; k < n_tok; ++k)
    for (int i = 0; i < n_rows; ++i) y[k * y_stride + i] = int8_row<Bits>(rows[i], cols, gs, x[k]);
}

}  // namespace

void portable_int8_q4(const AffineRow* rows, int n_rows, int64_t cols, int gs, const Int8X* x, int n_tok, float* y,
                      int64_t y_stride) {
  int8_rows<4>(rows, n_rows, cols, gs, x, n_tok, y, y_stride);
}

void portable_int8_q8(const AffineRow* rows, int n_rows, int64_t cols, int gs, const Int8X* x, int n_tok, float* y,
                      int64_t y_stride) {
  int8_rows<8>(rows, n_rows, cols, gs, x, n_tok, y, y_stride);
}

}  // namespace mb::inference::detail
