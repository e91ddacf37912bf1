// Products over ggml block rows (GGUF weights): each row is dequantized a
// chunk at a time by tensors/ggml_quants (the bit-exact reference
// dequantizer, shared by both instruction sets) and summed in the float
// order of kernels.h. The result of a row is therefore the float product of
// dequantize_rows' values, bit for bit, on every path: the AVX2 and portable
// kernels differ only in `accumulate`, which follows the one 16-lane order.
#include <algorithm>
#include <vector>

#include "inference/kernels_impl.h"

namespace mb::inference::detail {
namespace {

// Values dequantized per step: 256 (one K super-block, 8 small blocks), or
// one 32-value block when the row is not a multiple of 256 (the Q8_0, Q4_0,
// Q5_* fallback rows). REQUIRES for F32/F16/BF16 rows: cols % 16 == 0 (the
// loader gives other float rows to the kFloat path).
int64_t chunk_values(const WeightMatrix& w) {
  if (w.cols % 256 == 0) return 256;
  return std::max<int64_t>(16, ggml_block_size(w.ggml));
}

}  // namespace

void ggml_decode_rows(const Kernels& k, const WeightMatrix& w, const float* x, int64_t r0, int64_t r1, float* y) {
  const int64_t chunk = chunk_values(w);
  const size_t chunk_bytes = ggml_row_size(w.ggml, chunk);
  const uint64_t rb = w.row_bytes();
  thread_local std::vector<float> buf;
  buf.resize(chunk);
  for (int64_t r = r0; r < r1; ++r) {
    const auto* row = reinterpret_cast<const uint8_t*>(w.data + r * rb);
    float t[16] = {};
    for (int64_t c = 0; c < w.cols; c += chunk) {
      dequantize_rows(w.ggml, row + (c / chunk) * chunk_bytes, 1, chunk, buf.data());
      k.accumulate(t, buf.data(), x + c, chunk);
    }
    y[r - r0] = reduce16(t);
  }
}

void ggml_dequantize_row(const WeightMatrix& w, int64_t row, float* out) {
  dequantize_rows(w.ggml, reinterpret_cast<const uint8_t*>(w.data + row * w.row_bytes()), 1, w.cols, out);
}

}  // namespace mb::inference::detail
