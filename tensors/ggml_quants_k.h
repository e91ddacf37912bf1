#pragma once
// The K-quant super-blocks (256 values) behind tensors/ggml_quants.h; one
// block per call. Internal to tensors/ggml_quants*.cc.
#include <cstdint>

namespace mb::ggml_k {

constexpr int kQkK = 256;

// Q4_K, 144 bytes: f16 d, f16 dmin, scales[12] (6-bit scale/min pairs),
// qs[128] (4-bit codes).
void quantize_q4_k(const float* x, uint8_t* out);
void dequantize_q4_k(const uint8_t* in, float* y);

// Q5_K, 176 bytes: f16 d, f16 dmin, scales[12], qh[32] (fifth bits),
// qs[128].
void quantize_q5_k(const float* x, uint8_t* out);
void dequantize_q5_k(const uint8_t* in, float* y);

// Q6_K, 210 bytes: ql[128], qh[64], int8 scales[16], f16 d.
void quantize_q6_k(const float* x, uint8_t* out);
void dequantize_q6_k(const uint8_t* in, float* y);

}  // namespace mb::ggml_k
