#pragma once
// Fusion: base model + ordered LoRA/DoRA adapters → one model directory.
//
// The arithmetic, per adapted tensor (everything float32 unless said):
//   W0    = the base weight in f32. A float base converts exactly; an
//           MLX-quantized base is dequantized as q·s + b with s and b
//           converted to f32, one f32 multiply and one f32 add. This is
//           deliberately more precise than mlx_lm's T(T(q·s)+b) in the
//           scales' dtype T.
//   delta = s · (B @ A), [out, in], for each adapter in order. Per output
//           element the sum runs over k = 0..r-1 ascending:
//           d = 0; d = d + (s·B[o,k])·A[k,i] (the MLX formula (s·Bᵀ)@Aᵀ).
//   W*    = ((W0 + delta₁) + delta₂) + …; a DoRA adapter instead sets
//           V = W + delta, W = (m[o] / ‖V[o,:]‖₂) · V[o,:] (norm and
//           factor in double, rounded to f32 once).
//   dequantize mode: the output holds round(W*) in the output dtype (RNE),
//           and quantization is removed from config.json.
//   inplace mode:    W* is rounded to the scales' dtype T (what MLX's
//           quantizer sees) and re-quantized with the tensor's own bits and
//           group size (per-layer overrides included), scales in T, GPU or
//           CPU rounding, as mlx_lm.fuse does without --dequantize;
//           config.json keeps its quantization. (MLX's DoRA fuse would emit
//           f32 scales here; we keep T so the layout stays uniform.)
// Unadapted tensors: dequantize mode dequantizes/converts every float
// tensor to the output dtype; inplace mode copies all bytes through.
// Non-float tensors are always copied through.
//
// Every output element depends only on its own row, every sum has a fixed
// order and chunk boundaries depend only on the shape, so the bytes are
// identical for any thread count.
//
// Streaming: tensors are processed one at a time; a tensor's rows are cut
// into chunks of about 32 Ki elements that the threads take in turn and
// write straight into the output shards. Peak memory is a few chunks per
// thread; the inputs are memory-mapped.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/result.h"
#include "tensors/adapters.h"
#include "tensors/dtype.h"
#include "tensors/mlx_quant.h"
#include "tensors/model_dir.h"
#include "tensors/retention.h"

namespace mb {

class Reporter;

// ---- fuse_model ------------------------------------------------------------

enum class FuseMode { kDequantize, kInplace };
const char* fuse_mode_name(FuseMode mode);

struct FuseOptions {
  FuseMode mode = FuseMode::kDequantize;
  // Dequantize mode's output dtype (F16, BF16 or F32); nullopt = default_dtype().
  std::optional<DType> dtype;
  // Inplace mode's re-quantizer (and the quantizer of `quantize`).
  QuantKernel kernel = QuantKernel::kGpu;
  // Dequantize mode only: quantize the fused weights straight to these bits
  // and group size in the same streaming pass (the kernel comes from
  // `kernel`). The same tensors are quantized as quantize_model() would
  // (Linear/Embedding weights whose input dimension the group size
  // divides), and the bytes equal fusing to `dtype` and then quantizing,
  // without writing and re-reading the float model in between. The
  // retention report then measures the quantization.
  std::optional<QuantParams> quantize;
  int threads = 0;  // 0 = all cores
  uint64_t max_shard_bytes = kDefaultMaxShardBytes;
  std::string step;  // names progress events, may be empty
};

struct FuseResult {
  DType dtype = DType::kF32;  // float output dtype (inplace: the scales' dtype)
  int64_t tensors = 0;        // tensors written
  int64_t adapted = 0;        // tensors that carry an adapter delta
  uint64_t bytes = 0;         // tensor bytes written (all shards)
  RetentionReport retention;  // over the adapted tensors
};

// Fuses `adapters` (in order) into the model at `base_dir` and writes an
// mlx_lm model directory into `out_dir`, which must exist (usually a staging
// directory; nothing is written outside it and on error no shard or
// config.json is left under its final name). Every adapter is validated
// against the base before any output is written. Tokenizer and other side
// files are carried over by link.
// Errors: kInvalidInput (adapter/base mismatch, inplace with a float base,
// bad dtype), kCorrupt (bad safetensors, naming the file), kUnsupported.
Result<FuseResult> fuse_model(FileSystem& fs, const fs::path& base_dir, const std::vector<Adapter>& adapters,
                              const fs::path& out_dir, const FuseOptions& options, Reporter& reporter);

// Which adapter modules change which base tensor ("<m>.weight"), in adapter
// order, after validating every adapter against `base` (its warnings go to
// `reporter`). The modules point into `adapters`.
using AdaptedModules = std::map<std::string, std::vector<const LoraModule*>>;
Result<AdaptedModules> fuse_adapted_modules(const ModelDir& base, const fs::path& base_dir,
                                            const std::vector<Adapter>& adapters, Reporter& reporter);
// fuse_model's checks of `options` against `base` (kInvalidInput): in-place
// needs a quantized base and no other bits, valid bits and group size, a
// float output dtype.
Status check_fuse_options(const ModelDir& base, const fs::path& base_dir, const FuseOptions& options);
// The config.json fuse_model writes: the base's, with quantization and
// torch_dtype describing the output (`out_dtype`, `options.quantize`).
nlohmann::ordered_json fused_config(const ModelDir& base, DType out_dtype, const FuseOptions& options);

// The float dtype a model "is": for an MLX-quantized model the dtype of its
// scales (what mlx_lm.fuse --dequantize writes); otherwise config.json's
// torch_dtype when it is float16/bfloat16/float32; otherwise the dtype of
// its first floating-point 2-D weight; otherwise F32.
DType default_dtype(const ModelDir& model);
// "float16" / "bfloat16" / "float32" (config.json spelling), or nullopt.
std::optional<std::string> torch_dtype_name(DType dtype);
std::optional<DType> dtype_from_torch_name(std::string_view name);

// The logical [out, in] lookup validate_adapter() needs, over a model.
BaseShapeLookup base_shape_lookup(const ModelDir& model);

// ---- Reading any model tensor as float32 rows -------------------------------

// Every tensor of `model` has a dtype real models use (is_model_dtype);
// otherwise kInvalidInput naming the tensor and its file. The steps that
// write a model check this first, so an F64 or F8 tensor is an error rather
// than a tensor copied into a model mlx_lm cannot load.
Status check_model_dtypes(const ModelDir& model);

// A tensor of a model directory seen as float32 rows [rows, cols] (cols =
// the last dimension): a float tensor converts exactly; an MLX-quantized
// "<m>.weight" (with <m>.scales and <m>.biases) dequantizes as q·s + b in
// f32 (see the top of this file). Borrows the ModelDir's mappings; immutable
// and thread-safe; each thread uses its own Scratch.
class WeightRows {
 public:
  // kUnsupported for a non-float tensor, kNotFound when absent, kCorrupt or
  // kInvalidInput for an inconsistent quantized triple (naming the file).
  static Result<WeightRows> open(const ModelDir& model, const std::string& name);

  const std::string& name() const { return m_name; }
  const std::string& file() const { return m_file; }             // the shard, for errors
  const std::vector<int64_t>& shape() const { return m_shape; }  // logical
  int64_t rows() const { return m_rows; }
  int64_t cols() const { return m_cols; }
  bool quantized() const { return m_quant.has_value(); }
  const std::optional<LayerQuant>& quant() const { return m_quant; }
  // The element dtype, or the scales' dtype when quantized.
  DType dtype() const { return m_dtype; }

  struct Scratch {
    std::vector<float> scales, biases;
  };
  Scratch make_scratch() const;
  // REQUIRES: row < rows(), out.size() == cols().
  void read_row(int64_t row, std::span<float> out, Scratch& scratch) const;

 private:
  std::string m_name, m_file;
  std::vector<int64_t> m_shape;
  int64_t m_rows = 0, m_cols = 0;
  DType m_dtype = DType::kF32;
  std::optional<LayerQuant> m_quant;
  std::span<const std::byte> m_data, m_scales, m_biases;
};

// True for "<m>.scales" / "<m>.biases" of a quantized module: the part of a
// quantized triple that WeightRows reads through "<m>.weight".
bool is_quant_companion(const ModelDir& model, const std::string& name);
// The model's tensors in file order without those companions: one name per
// logical tensor, each readable with WeightRows.
std::vector<std::string> logical_tensor_names(const ModelDir& model);

// Exact f32 dequantization of packed rows (q·s + b, s and b in f32).
// REQUIRES: sizes as for mlx_quant's dequantize_rows.
void dequantize_rows_f32(std::span<const std::byte> packed, std::span<const std::byte> scales,
                         std::span<const std::byte> biases, DType scales_dtype, int64_t cols, int bits, int group_size,
                         std::span<float> out, WeightRows::Scratch& scratch);

// ---- Encoding one tensor into an output directory ---------------------------

// How an output tensor is stored: float in `dtype`, or MLX-quantized with
// scales and biases in `dtype`.
struct Encoding {
  bool quantize = false;
  DType dtype = DType::kF32;
  QuantParams quant;
};

// One output tensor: `rows` (+ `modules` fused in, in order) encoded with
// `encoding` and written to `out` under rows->name() (and, quantized,
// "<m>.scales"/"<m>.biases"). With `measure`, retention compares the stored
// values Ŵ against W* = reference (+ reference_modules) and W0 = reference;
// `reference` defaults to `rows` and reference_modules to `modules`.
struct EncodeJob {
  const WeightRows* rows = nullptr;
  std::vector<const LoraModule*> modules;
  Encoding encoding;
  bool measure = false;
  const WeightRows* reference = nullptr;
  std::vector<const LoraModule*> reference_modules;
};
Result<std::optional<TensorRetention>> encode_tensor(const EncodeJob& job, ModelDirWriter& out, int threads);

// The output declarations for encoding a tensor of logical `shape`.
std::vector<TensorDecl> encoded_decls(const std::string& name, const std::vector<int64_t>& shape,
                                      const Encoding& encoding);

// ---- Row arithmetic (pure; exposed for tests) -------------------------------

// out = W*[row] for the modules of one tensor applied in order to w0 (the
// base row, f32). nullptr modules are skipped. REQUIRES: w0, out and
// scratch have the tensor's `in` elements; every module has out > row.
void fuse_row(std::span<const LoraModule* const> modules, int64_t row, std::span<const float> w0, std::span<float> out,
              std::span<float> scratch);

// Rows [0, rows) cut into chunks of about kChunkElements elements (the
// cut depends only on rows and cols); fn(chunk, begin, end) runs once per
// chunk on up to `threads` threads. Returns the error of the lowest failing
// chunk; after a failure the remaining chunks are skipped.
inline constexpr int64_t kChunkElements = int64_t{1} << 15;
int64_t row_chunk_rows(int64_t rows, int64_t cols);
Status for_each_row_chunk(int64_t rows, int64_t cols, int threads,
                          const std::function<Status(int64_t chunk, int64_t begin, int64_t end)>& fn);

}  // namespace mb
