#include "inference/kernels.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "inference/kernels_impl.h"

namespace mb::inference {

using detail::AffineRow;
using detail::Kernels;

const char* float_type_name(FloatType t) {
  switch (t) {
    case FloatType::kF32:
      return "f32";
    case FloatType::kF16:
      return "f16";
    case FloatType::kBF16:
      return "bf16";
  }
  return "?";
}

size_t float_type_size(FloatType t) { return t == FloatType::kF32 ? 4 : 2; }

uint64_t WeightMatrix::row_bytes() const {
  if (format == WeightFormat::kGgml) return ggml_row_size(ggml, cols);
  if (format == WeightFormat::kAffine) return static_cast<uint64_t>(cols) * bits / 8;
  return static_cast<uint64_t>(cols) * float_type_size(dtype);
}

uint64_t WeightMatrix::total_bytes() const {
  uint64_t n = row_bytes() * rows;
  if (format == WeightFormat::kAffine) n += 2 * float_type_size(dtype) * rows * (cols / group_size);
  return n;
}

std::string WeightMatrix::describe() const {
  if (format == WeightFormat::kFloat) return float_type_name(dtype);
  if (format == WeightFormat::kGgml) return ggml_type_name(ggml);
  return fmt::format("q{} gs{}", bits, group_size);
}

// ---------------------------------------------------------------------------

namespace {

// The implementations from the widest down; kernels() takes the first the
// CPU has, unless a test or $MODELBUILD_KERNELS asks for another.
struct Isa {
  const char* name;
  const Kernels* (*get)();
};
const Kernels* portable_ptr() { return &detail::portable_kernels(); }
constexpr Isa kIsas[] = {
    {"avx512", detail::avx512_kernels}, {"avx2", detail::avx2_kernels}, {"portable", portable_ptr}};

std::atomic<const Kernels*> g_forced{nullptr};

// -1: not forced (then $MODELBUILD_ACTIVATIONS); 0: f32; 1: int8.
std::atomic<int> g_forced_int8{-1};

bool int8_activations() {
  const int forced = g_forced_int8.load(std::memory_order_relaxed);
  if (forced >= 0) return forced == 1;
  static const bool from_env = [] {
    const char* want = std::getenv("MODELBUILD_ACTIVATIONS");
    return want != nullptr && std::string_view(want) == "int8";
  }();
  return from_env;
}

const Kernels* from_environment() {
  const char* want = std::getenv("MODELBUILD_KERNELS");
  if (want == nullptr || *want == '\0') return nullptr;
  for (const Isa& isa : kIsas)
    if (std::string_view(want) == isa.name) return isa.get();
  return nullptr;
}

const Kernels& kernels() {
  if (const Kernels* forced = g_forced.load(std::memory_order_relaxed)) return *forced;
  static const Kernels* best = [] {
    if (const Kernels* k = from_environment()) return k;
    for (const Isa& isa : kIsas)
      if (const Kernels* k = isa.get()) return k;
    return portable_ptr();
  }();
  return *best;
}

// Natural-order codes of one packed row (LSB-first bitstream).
void unpack_codes(const uint8_t* p, int bits, int64_t n, uint8_t* out) {
  if (bits == 8) {
    std::memcpy(out, p, n);
    return;
  }
  const unsigned mask = (1u << bits) - 1;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t bit = static_cast<uint64_t>(i) * bits;
    const uint64_t byte = bit >> 3;
    const unsigned shift = bit & 7;
    unsigned v = p[byte] >> shift;
    if (shift + bits > 8) v |= static_cast<unsigned>(p[byte + 1]) << (8 - shift);
    out[i] = static_cast<uint8_t>(v & mask);
  }
}

// Codes of one row as floats in prepared order (4-bit: per 16 elements, the
// low nibbles of 8 bytes, then their high nibbles).
void unpack_prepared(const Kernels& k, const uint8_t* p, int bits, int64_t n, float* out, std::vector<uint8_t>& tmp) {
  if (bits == 4) return k.unpack_q4(p, n, out);
  if (bits == 8) return k.unpack_q8(p, n, out);
  tmp.resize(n);
  unpack_codes(p, bits, n, tmp.data());
  k.unpack_q8(tmp.data(), n, out);
}

template <FloatType T>
void convert_row(const std::byte* p, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = load_float(p, T, i);
}

void row_scales(const WeightMatrix& w, int64_t row, float* scales, float* biases) {
  const int64_t groups = w.cols / w.group_size;
  const int64_t off = row * groups * static_cast<int64_t>(float_type_size(w.dtype));
  switch (w.dtype) {
    case FloatType::kF32:
      convert_row<FloatType::kF32>(w.scales + off, groups, scales);
      convert_row<FloatType::kF32>(w.biases + off, groups, biases);
      break;
    case FloatType::kBF16:
      convert_row<FloatType::kBF16>(w.scales + off, groups, scales);
      convert_row<FloatType::kBF16>(w.biases + off, groups, biases);
      break;
    case FloatType::kF16:
      convert_row<FloatType::kF16>(w.scales + off, groups, scales);
      convert_row<FloatType::kF16>(w.biases + off, groups, biases);
      break;
  }
}

// x in the kernels' prepared order, and per-group sums, for every token.
struct PreparedX {
  const float* xp = nullptr;
  const float* xsum = nullptr;
  int64_t xp_stride = 0;
  int64_t xsum_stride = 0;
  std::vector<float> xp_storage;
  std::vector<float> xsum_storage;
};

void prepare(const WeightMatrix& w, const float* x, int64_t n_tokens, PreparedX& out) {
  out.xp = x;
  out.xp_stride = w.cols;
  if (w.format != WeightFormat::kAffine) return;
  const int64_t cols = w.cols, gs = w.group_size, groups = cols / gs;
  if (w.bits == 4) {
    out.xp_storage.resize(n_tokens * cols);
    for (int64_t t = 0; t < n_tokens; ++t) {
      const float* src = x + t * cols;
      float* dst = out.xp_storage.data() + t * cols;
      for (int64_t c = 0; c < cols; c += 16)
        for (int l = 0; l < 8; ++l) {
          dst[c + l] = src[c + 2 * l];
          dst[c + 8 + l] = src[c + 2 * l + 1];
        }
    }
    out.xp = out.xp_storage.data();
  }
  out.xsum_storage.resize(n_tokens * groups);
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t g = 0; g < groups; ++g) {
      float s = 0;
      for (int64_t c = g * gs; c < (g + 1) * gs; ++c) s += x[t * cols + c];
      out.xsum_storage[t * groups + g] = s;
    }
  out.xsum = out.xsum_storage.data();
  out.xsum_stride = groups;
}

struct Scratch {
  std::vector<float> tile;  // unpacked rows (prefill)
  std::vector<float> scales, biases;
  std::vector<uint8_t> codes, tmp;
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

// Rows [r0, r1) of one job, one token.
void decode_block(const Kernels& k, const WeightMatrix& w, const PreparedX& px, int64_t r0, int64_t r1, float* y) {
  if (w.format == WeightFormat::kGgml) return detail::ggml_decode_rows(k, w, px.xp, r0, r1, y + r0);
  if (w.format == WeightFormat::kFloat) {
    const uint64_t rb = w.row_bytes();
    for (int64_t r = r0; r < r1; r += 2) {
      const int n = r + 1 < r1 ? 2 : 1;
      const std::byte* rows[2] = {w.data + r * rb, w.data + (r + n - 1) * rb};
      k.decode_float(rows, n, w.dtype, w.cols, px.xp, y + r);
    }
    return;
  }
  Scratch& s = scratch();
  const int64_t groups = w.cols / w.group_size;
  const uint64_t sb = groups * float_type_size(w.dtype);
  const bool direct = w.bits == 4 || w.bits == 8;
  if (!direct) s.codes.resize(2 * w.cols);
  const uint64_t rb = w.row_bytes();
  for (int64_t r = r0; r < r1; r += 2) {
    const int n = r + 1 < r1 ? 2 : 1;
    AffineRow rows[2];
    for (int i = 0; i < n; ++i) {
      const auto* packed = reinterpret_cast<const uint8_t*>(w.data + (r + i) * rb);
      const uint8_t* codes = packed;
      if (!direct) {
        codes = s.codes.data() + i * w.cols;
        unpack_codes(packed, w.bits, w.cols, s.codes.data() + i * w.cols);
      }
      rows[i] = {codes, w.scales + (r + i) * sb, w.biases + (r + i) * sb, w.dtype};
    }
    if (w.bits == 4)
      k.decode_q4(rows, n, w.cols, w.group_size, px.xp, px.xsum, y + r);
    else
      k.decode_q8(rows, n, w.cols, w.group_size, px.xp, px.xsum, y + r);
  }
}

constexpr int64_t kTokenBlock = 8;
// Below this many tokens a product runs token by token through the decode path.
constexpr int64_t kMinTileTokens = 4;

// Rows [r0, r1) of one job, many tokens: unpack each row once, then run it
// against blocks of tokens while both stay in cache.
void prefill_block(const Kernels& k, const WeightMatrix& w, const PreparedX& px, int64_t n_tok, int64_t r0, int64_t r1,
                   float* y) {
  Scratch& s = scratch();
  const int64_t nr = r1 - r0, cols = w.cols;
  const bool affine = w.format == WeightFormat::kAffine;
  const int64_t groups = affine ? cols / w.group_size : 0;
  // f32 rows are used in place when aligned (MLX's writer does not pad the
  // header, so tensor data may start at any byte).
  const bool direct_f32 = w.format == WeightFormat::kFloat && w.dtype == FloatType::kF32 &&
                          reinterpret_cast<uintptr_t>(w.data) % 4 == 0 && w.row_bytes() % 4 == 0;
  if (!direct_f32) s.tile.resize(nr * cols);
  if (affine) {
    s.scales.resize(nr * groups);
    s.biases.resize(nr * groups);
  }
  const uint64_t rb = w.row_bytes();
  for (int64_t i = 0; i < nr; ++i) {
    const std::byte* row = w.data + (r0 + i) * rb;
    if (w.format == WeightFormat::kGgml) {
      detail::ggml_dequantize_row(w, r0 + i, s.tile.data() + i * cols);
    } else if (affine) {
      unpack_prepared(k, reinterpret_cast<const uint8_t*>(row), w.bits, cols, s.tile.data() + i * cols, s.tmp);
      row_scales(w, r0 + i, s.scales.data() + i * groups, s.biases.data() + i * groups);
    } else if (!direct_f32) {
      for (int64_t c = 0; c < cols; ++c) s.tile[i * cols + c] = load_float(row, w.dtype, c);
    }
  }
  for (int64_t t0 = 0; t0 < n_tok; t0 += kTokenBlock) {
    const int64_t nt = std::min(kTokenBlock, n_tok - t0);
    for (int64_t i = 0; i < nr; ++i) {
      float* yo = y + t0 * w.rows + r0 + i;
      if (affine) {
        k.tile_affine(s.tile.data() + i * cols, s.scales.data() + i * groups, s.biases.data() + i * groups, cols,
                      w.group_size, px.xp + t0 * px.xp_stride, px.xp_stride, px.xsum + t0 * px.xsum_stride,
                      px.xsum_stride, nt, yo, w.rows);
      } else {
        const float* wr =
            direct_f32 ? reinterpret_cast<const float*>(w.data + (r0 + i) * rb) : s.tile.data() + i * cols;
        k.tile_float(wr, cols, px.xp + t0 * px.xp_stride, px.xp_stride, nt, yo, w.rows);
      }
    }
  }
}

// ---- Integer products (kernels_int8.cc) ----------------------------------

// Every token of one input quantized for one weight layout.
struct Int8Input {
  const float* x = nullptr;
  int gs = 0;
  bool q4_order = false;
  std::vector<int8_t> q;
  std::vector<float> d, xsum;
  std::vector<int32_t> lanes;
  std::vector<detail::Int8X> tokens;
};

void quantize_input(const WeightMatrix& w, const float* x, int64_t n_tokens, ThreadPool& pool, Int8Input& in) {
  const int64_t cols = w.cols, groups = cols / w.group_size;
  in.x = x;
  in.gs = w.group_size;
  in.q4_order = w.bits == 4;
  in.q.resize(n_tokens * cols);
  in.d.resize(n_tokens * groups);
  in.xsum.resize(n_tokens * groups);
  in.lanes.resize(n_tokens * groups * 8);
  in.tokens.resize(n_tokens);
  pool.parallel_for(n_tokens, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      detail::quantize_int8(x + t * cols, cols, w.group_size, w.bits, in.q.data() + t * cols, in.d.data() + t * groups,
                            in.lanes.data() + t * groups * 8, in.xsum.data() + t * groups);
      in.tokens[t] = {in.q.data() + t * cols, in.d.data() + t * groups, in.lanes.data() + t * groups * 8,
                      in.xsum.data() + t * groups};
    }
  });
}

// Tokens per pass over a block of rows: their int8 activations (16 * cols
// bytes) stay in L1/L2 while every row pair of the block runs against them,
// rather than every row pair streaming all the prompt's activations.
constexpr int64_t kInt8TokenBlock = 16;

// Rows [r0, r1) of one affine job against every token: a pair of rows at a
// time against four tokens at a time, one block of tokens after another.
void int8_block(const Kernels& k, const WeightMatrix& w, const Int8Input& in, int64_t n_tok, int64_t r0, int64_t r1,
                float* y) {
  Scratch& s = scratch();
  const int64_t nr = r1 - r0;
  const bool direct = w.bits == 4 || w.bits == 8;
  if (!direct) s.codes.resize(nr * w.cols);
  const int64_t groups = w.cols / w.group_size;
  const uint64_t rb = w.row_bytes(), sb = groups * float_type_size(w.dtype);
  thread_local std::vector<AffineRow> rows;
  rows.resize(nr);
  for (int64_t i = 0; i < nr; ++i) {
    const auto* packed = reinterpret_cast<const uint8_t*>(w.data + (r0 + i) * rb);
    const uint8_t* codes = packed;
    if (!direct) {  // unpacked once, for every token
      codes = s.codes.data() + i * w.cols;
      unpack_codes(packed, w.bits, w.cols, s.codes.data() + i * w.cols);
    }
    rows[i] = {codes, w.scales + (r0 + i) * sb, w.biases + (r0 + i) * sb, w.dtype};
  }
  const auto kernel = w.bits == 4 ? k.int8_q4 : k.int8_q8;
  for (int64_t t0 = 0; t0 < n_tok; t0 += kInt8TokenBlock) {
    const int64_t t1 = std::min(n_tok, t0 + kInt8TokenBlock);
    for (int64_t i = 0; i < nr; i += 2) {
      const int n = i + 1 < nr ? 2 : 1;
      for (int64_t t = t0; t < t1; t += 4) {
        const int nt = static_cast<int>(std::min<int64_t>(4, t1 - t));
        kernel(rows.data() + i, n, w.cols, w.group_size, in.tokens.data() + t, nt, y + t * w.rows + r0 + i, w.rows);
      }
    }
  }
}

struct Block {
  int job;
  int64_t r0, r1;
};

}  // namespace

void matmul_many(std::span<const MatmulJob> jobs, int64_t n_tokens, ThreadPool& pool) {
  if (n_tokens <= 0 || jobs.empty()) return;
  const Kernels& k = kernels();
  const bool int8 = int8_activations();
  std::vector<PreparedX> prepared(jobs.size());
  // Jobs that share an input and a weight layout (q, k and v; gate and up)
  // share its quantization.
  std::vector<Int8Input> int8_inputs;
  int8_inputs.reserve(jobs.size());
  std::vector<const Int8Input*> int8_of(jobs.size(), nullptr);
  std::vector<Block> blocks;
  for (size_t j = 0; j < jobs.size(); ++j) {
    const WeightMatrix& w = *jobs[j].w;
    if (int8 && w.format == WeightFormat::kAffine) {
      for (const Int8Input& in : int8_inputs)
        if (in.x == jobs[j].x && in.gs == w.group_size && in.q4_order == (w.bits == 4)) int8_of[j] = &in;
      if (int8_of[j] == nullptr) {
        quantize_input(w, jobs[j].x, n_tokens, pool, int8_inputs.emplace_back());
        int8_of[j] = &int8_inputs.back();
      }
    } else {
      prepare(w, jobs[j].x, n_tokens, prepared[j]);
    }
    const int64_t target = w.rows / (4 * pool.size());
    const int64_t per_block = n_tokens < kMinTileTokens ? std::clamp<int64_t>(target & ~int64_t{1}, 2, 64)
                                                        : std::clamp<int64_t>(target, 1, 16);
    for (int64_t r = 0; r < w.rows; r += per_block)
      blocks.push_back({static_cast<int>(j), r, std::min(w.rows, r + per_block)});
  }
  pool.parallel_for(static_cast<int64_t>(blocks.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const Block& blk = blocks[i];
      const MatmulJob& job = jobs[blk.job];
      if (int8_of[blk.job] != nullptr) {
        int8_block(k, *job.w, *int8_of[blk.job], n_tokens, blk.r0, blk.r1, job.y);
      } else if (n_tokens < kMinTileTokens) {
        // Few tokens: unpacking rows would cost more than it saves; the
        // decode path gives bit-identical rows.
        const PreparedX& px = prepared[blk.job];
        for (int64_t t = 0; t < n_tokens; ++t) {
          PreparedX one;
          one.xp = px.xp + t * px.xp_stride;
          one.xsum = px.xsum ? px.xsum + t * px.xsum_stride : nullptr;
          decode_block(k, *job.w, one, blk.r0, blk.r1, job.y + t * job.w->rows);
        }
      } else
        prefill_block(k, *job.w, prepared[blk.job], n_tokens, blk.r0, blk.r1, job.y);
    }
  });
}

void matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  const MatmulJob job{&w, x, y};
  matmul_many(std::span<const MatmulJob>(&job, 1), n_tokens, pool);
}

void gather_row(const WeightMatrix& w, int64_t row, float* out) {
  const std::byte* p = w.data + row * w.row_bytes();
  if (w.format == WeightFormat::kFloat) {
    for (int64_t c = 0; c < w.cols; ++c) out[c] = load_float(p, w.dtype, c);
    return;
  }
  if (w.format == WeightFormat::kGgml) return detail::ggml_dequantize_row(w, row, out);
  std::vector<uint8_t> codes(w.cols);
  unpack_codes(reinterpret_cast<const uint8_t*>(p), w.bits, w.cols, codes.data());
  const int64_t groups = w.cols / w.group_size;
  for (int64_t g = 0; g < groups; ++g) {
    const float s = load_float(w.scales, w.dtype, row * groups + g);
    const float b = load_float(w.biases, w.dtype, row * groups + g);
    for (int64_t c = g * w.group_size; c < (g + 1) * w.group_size; ++c) out[c] = s * codes[c] + b;
  }
}

float dot_f32(const float* a, const float* b, int64_t n) { return kernels().dot(a, b, n); }

const char* kernel_isa() {
  for (const Isa& isa : kIsas)
    if (isa.get() == &kernels()) return isa.name;
  return "portable";
}

std::vector<std::string> available_kernel_isas() {
  std::vector<std::string> out;
  for (const Isa& isa : kIsas)
    if (isa.get() != nullptr) out.push_back(isa.name);
  return out;
}

bool force_kernel_isa(std::string_view name) {
  if (name.empty()) {
    g_forced.store(nullptr);
    return true;
  }
  for (const Isa& isa : kIsas)
    if (name == isa.name && isa.get() != nullptr) {
      g_forced.store(isa.get());
      return true;
    }
  return false;
}

void force_portable_kernels(bool on) { force_kernel_isa(on ? "portable" : ""); }

const char* activations() { return int8_activations() ? "int8" : "f32"; }

bool force_activations(std::string_view name) {
  if (name.empty()) {
    g_forced_int8.store(-1);
    return true;
  }
  if (name != "int8" && name != "f32") return false;
  g_forced_int8.store(name == "int8" ? 1 : 0);
  return true;
}

}  // namespace mb::inference
