#include "tensors/mlx_quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "tensors/kernels.h"
#include "tensors/safetensors.h"

namespace mb {

namespace {

constexpr int kMaxGroup = 128;

std::string shape_str(std::span<const int64_t> shape) {
  return nlohmann::json(std::vector<int64_t>(shape.begin(), shape.end())).dump();
}

// The largest finite value of the input dtype: the GPU kernels' initial min.
float dtype_max(DType dtype) {
  switch (dtype) {
    case DType::kF16:
      return 65504.0f;
    case DType::kBF16:
      return bf16_to_f32(0x7F7F);
    default:
      return std::numeric_limits<float>::max();
  }
}

float load(DType dtype, std::span<const std::byte> bytes, size_t i) {
  if (dtype == DType::kF32) {
    float f;
    std::memcpy(&f, bytes.data() + 4 * i, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, bytes.data() + 2 * i, 2);
  return dtype == DType::kF16 ? f16_to_f32(h) : bf16_to_f32(h);
}

Status check_dtype(std::string_view name, DType dtype) {
  if (!is_quantizable_float(dtype))
    return make_error(Errc::kUnsupported, std::string(name), "cannot quantize dtype {} (needs F32, F16 or BF16)",
                      dtype_name(dtype));
  return {};
}

// Byte size of a tensor; overflow is bad input here, not a corrupt file.
Result<uint64_t> tensor_nbytes_checked(std::string_view name, DType dtype, std::span<const int64_t> shape) {
  auto r = tensor_nbytes(dtype, shape, "", name);
  if (!r.ok()) return Error{Errc::kInvalidInput, std::string(name), r.error().message};
  return r;
}

Error size_error(std::string_view name, const char* what, size_t got, size_t want) {
  return make_error(Errc::kInvalidInput, std::string(name), "{} holds {} bytes, expected {}", what, got, want);
}

}  // namespace

const char* quant_kernel_name(QuantKernel kernel) { return kernel == QuantKernel::kCpu ? "cpu" : "gpu"; }

Status check_quant_params(int bits, int group_size, std::string_view where) {
  if (bits < 2 || bits > 8 || bits == 7)
    return make_error(Errc::kInvalidInput, std::string(where), "unsupported bits {} (supported: 2, 3, 4, 5, 6, 8)",
                      bits);
  if (group_size != 32 && group_size != 64 && group_size != 128)
    return make_error(Errc::kInvalidInput, std::string(where), "unsupported group size {} (supported: 32, 64, 128)",
                      group_size);
  return {};
}

Status check_quantizable(std::string_view name, DType dtype, std::span<const int64_t> shape,
                         const QuantParams& params) {
  MB_TRY(check_quant_params(params.bits, params.group_size, name));
  MB_TRY(check_dtype(name, dtype));
  if (shape.empty()) return make_error(Errc::kInvalidInput, std::string(name), "cannot quantize a scalar");
  if (shape.back() % params.group_size != 0)
    return make_error(Errc::kInvalidInput, std::string(name),
                      "last dimension of shape {} is not divisible by group size {}", shape_str(shape),
                      params.group_size);
  return {};
}

std::vector<int64_t> packed_shape(std::span<const int64_t> shape, int bits) {
  std::vector<int64_t> out(shape.begin(), shape.end());
  out.back() = out.back() * bits / 32;
  return out;
}

std::vector<int64_t> scales_shape(std::span<const int64_t> shape, int group_size) {
  std::vector<int64_t> out(shape.begin(), shape.end());
  out.back() /= group_size;
  return out;
}

Result<std::vector<int64_t>> dequantized_shape(std::string_view name, std::span<const int64_t> weight_shape,
                                               std::span<const int64_t> scale_shape, int bits, int group_size) {
  MB_TRY(check_quant_params(bits, group_size, name));
  std::string n(name);
  if (weight_shape.empty() || weight_shape.size() != scale_shape.size())
    return make_error(Errc::kInvalidInput, n, "packed weight {} and scales {} do not match", shape_str(weight_shape),
                      shape_str(scale_shape));
  for (size_t i = 0; i + 1 < weight_shape.size(); ++i)
    if (weight_shape[i] != scale_shape[i])
      return make_error(Errc::kInvalidInput, n, "packed weight {} and scales {} differ in leading dimensions",
                        shape_str(weight_shape), shape_str(scale_shape));
  int64_t packed = weight_shape.back();
  if (packed < 0 || packed > INT64_MAX / 32 || packed * 32 % bits != 0)
    return make_error(Errc::kInvalidInput, n, "{} packed columns do not hold whole {}-bit codes", packed, bits);
  int64_t in = packed * 32 / bits;
  if (scale_shape.back() > INT64_MAX / group_size || in != scale_shape.back() * group_size)
    return make_error(Errc::kInvalidInput, n,
                      "packed weight {} unpacks to {} columns at {} bits, but scales {} imply {} at group size {}",
                      shape_str(weight_shape), in, bits, shape_str(scale_shape), scale_shape.back() * group_size,
                      group_size);
  std::vector<int64_t> out(weight_shape.begin(), weight_shape.end());
  out.back() = in;
  return out;
}

namespace {

// std::round (half away from zero, the Metal/CUDA rounding) without the
// library call, which was a tenth of the quantization time. Exact: below
// 2^23 the truncation and x − trunc(x) are exact; at or above it (and for
// inf/NaN) x is returned as is, as std::round does. Only the sign of a zero
// result can differ, which no caller observes (0 and −0 give code 0).
inline float round_half_away(float x) {
  if (!(std::fabs(x) < 8388608.0f)) return x;
  float r = static_cast<float>(static_cast<int32_t>(x));
  const float d = x - r;
  // Selects rather than branches: d is ≥ 0.5 for about half of all weights.
  r += d >= 0.5f ? 1.0f : 0.0f;
  r -= d <= -0.5f ? 1.0f : 0.0f;
  return r;
}

// The kernel's rounding of a quotient to a code (before clamping).
float round_code(float x, QuantKernel kernel) {
  // rint honours the default round-to-nearest-even mode; round() is the
  // Metal/CUDA one, ties away from zero.
  return kernel == QuantKernel::kCpu ? std::rint(x) : round_half_away(x);
}

// A group's scale and bias from its min and max (kernels_avx2.cc computes
// the same for eight groups at once).
GroupParams group_params(float w_min, float w_max, int bits, QuantKernel kernel) {
  const float n_bins = static_cast<float>((1 << bits) - 1);
  const float eps = 1e-7f;
  const bool mask = std::fabs(w_min) > std::fabs(w_max);
  float scale = std::max((w_max - w_min) / n_bins, eps);
  scale = mask ? scale : -scale;
  const float edge = mask ? w_min : w_max;
  const float q0 = round_code(edge / scale, kernel);
  float bias = 0.0f;
  if (q0 != 0.0f) {
    scale = edge / q0;
    bias = edge;
  }
  return {scale, bias};
}

}  // namespace

float gpu_initial_min(DType dtype) { return dtype_max(dtype); }

GroupParams quantize_group(std::span<const float> w, int bits, QuantKernel kernel, DType dtype,
                           std::span<uint8_t> codes) {
  const bool cpu = kernel == QuantKernel::kCpu;
  const float n_bins = static_cast<float>((1 << bits) - 1);
  // The GPU kernels start max at 0, so an all-negative group still sees 0
  // as its maximum (docs/formats/mlx-quantization.md §2.1). A NaN never wins a comparison, so it
  // is ignored here (kernels_avx2.cc relies on that).
  float w_min = cpu ? std::numeric_limits<float>::infinity() : gpu_initial_min(dtype);
  float w_max = cpu ? -std::numeric_limits<float>::infinity() : 0.0f;
  for (float v : w) {
    w_max = std::max(w_max, v);
    w_min = std::min(w_min, v);
  }
  const GroupParams p = group_params(w_min, w_max, bits, kernel);
  for (size_t i = 0; i < w.size(); ++i) {
    float q = round_code((w[i] - p.bias) / p.scale, kernel);
    // The GPU clamps only at the top; its quotient is never below -0.5, so
    // the lower clamp only turns -0 into 0. Written so that a NaN (from a
    // NaN weight) becomes code 0, as the vector max instruction does.
    q = q > 0.0f ? q : 0.0f;
    q = q < n_bins ? q : n_bins;
    codes[i] = static_cast<uint8_t>(q);
  }
  return p;
}

void pack_codes(std::span<const uint8_t> codes, int bits, std::span<std::byte> out) {
  // Byte-aligned widths without the bit accumulator (the hot 8- and 4-bit
  // cases); codes fill each byte from its low bits, as below.
  if (bits == 8) {
    for (size_t i = 0; i < codes.size(); ++i) out[i] = static_cast<std::byte>(codes[i]);
    return;
  }
  if (bits == 4 && codes.size() % 2 == 0) {
    for (size_t i = 0; i < codes.size() / 2; ++i)
      out[i] = static_cast<std::byte>((codes[2 * i] & 0xF) | (codes[2 * i + 1] << 4));
    return;
  }
  uint64_t acc = 0;
  int held = 0;
  size_t o = 0;
  for (uint8_t c : codes) {
    acc |= static_cast<uint64_t>(c) << held;
    held += bits;
    while (held >= 8) {
      out[o++] = static_cast<std::byte>(acc & 0xFF);
      acc >>= 8;
      held -= 8;
    }
  }
}

void unpack_codes(std::span<const std::byte> packed, int bits, std::span<uint8_t> codes) {
  if (bits == 8) {
    for (size_t i = 0; i < codes.size(); ++i) codes[i] = std::to_integer<uint8_t>(packed[i]);
    return;
  }
  if (bits == 4 && codes.size() % 2 == 0) {
    for (size_t i = 0; i < codes.size() / 2; ++i) {
      const uint8_t b = std::to_integer<uint8_t>(packed[i]);
      codes[2 * i] = b & 0xF;
      codes[2 * i + 1] = b >> 4;
    }
    return;
  }
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  uint64_t acc = 0;
  int held = 0;
  size_t in = 0;
  for (uint8_t& c : codes) {
    while (held < bits) {
      acc |= static_cast<uint64_t>(std::to_integer<uint8_t>(packed[in++])) << held;
      held += 8;
    }
    c = static_cast<uint8_t>(acc & mask);
    acc >>= bits;
    held -= bits;
  }
}

Status quantize_rows(std::string_view name, std::span<const float> w, int64_t cols, DType dtype,
                     const QuantParams& params, std::span<std::byte> packed, std::span<std::byte> scales,
                     std::span<std::byte> biases) {
  const int bits = params.bits;
  const int gs = params.group_size;
  MB_TRY(check_quant_params(bits, gs, name));
  MB_TRY(check_dtype(name, dtype));
  if (cols <= 0 || cols % gs != 0 || w.size() % static_cast<size_t>(cols) != 0)
    return make_error(Errc::kInvalidInput, std::string(name),
                      "{} values do not form rows of {} columns in groups of {}", w.size(), cols, gs);
  const size_t groups = w.size() / static_cast<size_t>(gs);
  const size_t group_bytes = static_cast<size_t>(gs * bits / 8);
  if (packed.size() != groups * group_bytes)
    return size_error(name, "packed output", packed.size(), groups * group_bytes);
  const size_t param_bytes = groups * dtype_size(dtype);
  if (scales.size() != param_bytes) return size_error(name, "scales output", scales.size(), param_bytes);
  if (biases.size() != param_bytes) return size_error(name, "biases output", biases.size(), param_bytes);

  // Rows hold whole groups and a group of >= 32 codes packs to whole words,
  // so every group packs independently at its own byte offset. Groups go
  // through the kernel in blocks that fit the stack.
  constexpr size_t kBlock = 32;
  uint8_t codes[kBlock * kMaxGroup];
  float s[kBlock], b[kBlock];
  const size_t t = dtype_size(dtype);
  const kernels::Table& k = kernels::table();
  for (size_t g0 = 0; g0 < groups; g0 += kBlock) {
    const size_t n = std::min(kBlock, groups - g0);
    k.quantize_groups(w.data() + g0 * gs, static_cast<int64_t>(n), gs, bits, params.kernel, dtype, codes, s, b);
    pack_codes(std::span<const uint8_t>(codes, n * gs), bits, packed.subspan(g0 * group_bytes, n * group_bytes));
    (void)from_f32(std::span<const float>(s, n), dtype, scales.subspan(g0 * t, n * t)).ok();
    (void)from_f32(std::span<const float>(b, n), dtype, biases.subspan(g0 * t, n * t)).ok();
  }
  return {};
}

Status dequantize_rows(std::string_view name, std::span<const std::byte> packed, std::span<const std::byte> scales,
                       std::span<const std::byte> biases, DType dtype, int64_t cols, int bits, int group_size,
                       std::span<float> out) {
  MB_TRY(check_quant_params(bits, group_size, name));
  MB_TRY(check_dtype(name, dtype));
  const size_t gs = static_cast<size_t>(group_size);
  if (cols <= 0 || cols % group_size != 0 || out.size() % static_cast<size_t>(cols) != 0)
    return make_error(Errc::kInvalidInput, std::string(name),
                      "{} values do not form rows of {} columns in groups of {}", out.size(), cols, group_size);
  const size_t groups = out.size() / gs;
  const size_t group_bytes = gs * static_cast<size_t>(bits) / 8;
  if (packed.size() != groups * group_bytes)
    return size_error(name, "packed weight", packed.size(), groups * group_bytes);
  const size_t param_bytes = groups * dtype_size(dtype);
  if (scales.size() != param_bytes) return size_error(name, "scales", scales.size(), param_bytes);
  if (biases.size() != param_bytes) return size_error(name, "biases", biases.size(), param_bytes);

  uint8_t codes[kMaxGroup];
  for (size_t g = 0; g < groups; ++g) {
    std::span<uint8_t> c(codes, gs);
    unpack_codes(packed.subspan(g * group_bytes, group_bytes), bits, c);
    const float s = load(dtype, scales, g);
    const float b = load(dtype, biases, g);
    float* o = out.data() + g * gs;
    if (dtype == DType::kF32) {
      for (size_t i = 0; i < gs; ++i) o[i] = static_cast<float>(c[i]) * s + b;
    } else {
      // MLX's CPU path rounds twice: the product to T, then the sum to T.
      for (size_t i = 0; i < gs; ++i)
        o[i] = round_to_dtype(round_to_dtype(static_cast<float>(c[i]) * s, dtype) + b, dtype);
    }
  }
  return {};
}

Result<QuantizedTensor> quantize_tensor(std::string_view name, DType dtype, std::span<const int64_t> shape,
                                        std::span<const std::byte> bytes, const QuantParams& params) {
  MB_TRY(check_quantizable(name, dtype, shape, params));
  MB_ASSIGN(uint64_t nbytes, tensor_nbytes_checked(name, dtype, shape));
  if (bytes.size() != nbytes) return size_error(name, "tensor", bytes.size(), nbytes);
  QuantizedTensor q;
  q.dtype = dtype;
  q.weight_shape = packed_shape(shape, params.bits);
  q.scales_shape = scales_shape(shape, params.group_size);
  const size_t n = nbytes / dtype_size(dtype);
  std::vector<float> w(n);
  MB_TRY(to_f32(dtype, bytes, w));
  q.weight.resize(n * params.bits / 8);
  q.scales.resize(n / params.group_size * dtype_size(dtype));
  q.biases.resize(q.scales.size());
  if (n == 0) return q;
  MB_TRY(quantize_rows(name, w, shape.back(), dtype, params, q.weight, q.scales, q.biases));
  return q;
}

Result<std::vector<float>> dequantize_tensor(std::string_view name, std::span<const int64_t> weight_shape,
                                             std::span<const std::byte> weight, std::span<const int64_t> scale_shape,
                                             DType scales_dtype, std::span<const std::byte> scales,
                                             std::span<const std::byte> biases, int bits, int group_size,
                                             std::vector<int64_t>* shape) {
  MB_ASSIGN(std::vector<int64_t> out_shape, dequantized_shape(name, weight_shape, scale_shape, bits, group_size));
  MB_ASSIGN(uint64_t numel_bytes, tensor_nbytes_checked(name, DType::kU8, out_shape));
  std::vector<float> out(numel_bytes);
  if (!out.empty())
    MB_TRY(dequantize_rows(name, weight, scales, biases, scales_dtype, out_shape.back(), bits, group_size, out));
  if (shape) *shape = std::move(out_shape);
  return out;
}

}  // namespace mb
