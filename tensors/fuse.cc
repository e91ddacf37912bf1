#include "tensors/fuse.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cmath>
#include <map>
#include <set>

#include "base/parallel.h"
#include "base/reporter.h"
#include "tensors/kernels.h"
#include "tensors/quantize_model.h"

namespace mb {

// ---- Chunks -----------------------------------------------------------------

int64_t row_chunk_rows(int64_t rows, int64_t cols) {
  const int64_t per = std::max<int64_t>(1, kChunkElements / std::max<int64_t>(1, cols));
  return std::min(std::max<int64_t>(rows, 1), per);
}

Status for_each_row_chunk(int64_t rows, int64_t cols, int threads,
                          const std::function<Status(int64_t, int64_t, int64_t)>& fn) {
  if (rows <= 0) return Status::ok_status();
  const int64_t per = row_chunk_rows(rows, cols);
  const int64_t chunks = (rows + per - 1) / per;
  return parallel_for(chunks, threads, [&](int64_t c) { return fn(c, c * per, std::min(rows, c * per + per)); });
}

// ---- Row arithmetic ---------------------------------------------------------

void fuse_row(std::span<const LoraModule* const> modules, int64_t row, std::span<const float> w0, std::span<float> out,
              std::span<float> scratch) {
  const int64_t in = static_cast<int64_t>(w0.size());
  assert(out.size() == w0.size() && scratch.size() >= w0.size());
  std::copy(w0.begin(), w0.end(), out.begin());
  float* delta = scratch.data();
  const kernels::Table& k = kernels::table();
  for (const LoraModule* m : modules) {
    if (m == nullptr) continue;
    assert(m->in == in && row < m->out);
    // The row's coefficients s·B[row, k]; on the stack for usual ranks.
    float local[64];
    std::vector<float> heap;
    float* coef = local;
    if (m->rank > 64) {
      heap.resize(static_cast<size_t>(m->rank));
      coef = heap.data();
    }
    const float* b_row = m->b.data() + row * m->rank;
    for (int64_t r = 0; r < m->rank; ++r) coef[r] = m->scale * b_row[r];
    k.lora_delta(coef, m->a.data(), m->rank, in, delta);
    if (!m->is_dora()) {
      for (int64_t i = 0; i < in; ++i) out[i] += delta[i];
      continue;
    }
    double norm_sq = 0;
    for (int64_t i = 0; i < in; ++i) {
      out[i] += delta[i];
      norm_sq += static_cast<double>(out[i]) * out[i];
    }
    const double norm = std::sqrt(norm_sq);
    if (norm == 0) continue;  // an all-zero row has no direction to rescale
    const double factor = m->magnitude[static_cast<size_t>(row)] / norm;
    for (int64_t i = 0; i < in; ++i) out[i] = static_cast<float>(factor * out[i]);
  }
}

// ---- Reading tensors as f32 rows ----------------------------------------------

namespace {

std::string shard_where(const ModelDir& model, std::string_view name) {
  const int shard = model.weights().shard_of(name);
  return shard < 0 ? model.dir().string() : model.weights().shards()[static_cast<size_t>(shard)]->where();
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

void dequantize_rows_f32(std::span<const std::byte> packed, std::span<const std::byte> scales,
                         std::span<const std::byte> biases, DType scales_dtype, int64_t cols, int bits, int group_size,
                         std::span<float> out, WeightRows::Scratch& scratch) {
  const int64_t rows = static_cast<int64_t>(out.size()) / cols;
  const int64_t groups = cols / group_size;
  const size_t row_packed = static_cast<size_t>(cols * bits / 8);
  const size_t row_scales = static_cast<size_t>(groups) * dtype_size(scales_dtype);
  scratch.scales.resize(static_cast<size_t>(groups));
  scratch.biases.resize(static_cast<size_t>(groups));
  for (int64_t r = 0; r < rows; ++r) {
    // Sizes are consistent by construction, so the conversions cannot fail.
    (void)to_f32(scales_dtype, scales.subspan(r * row_scales, row_scales), scratch.scales).ok();
    (void)to_f32(scales_dtype, biases.subspan(r * row_scales, row_scales), scratch.biases).ok();
    kernels::table().dequantize_packed(packed.data() + r * row_packed, bits, groups, group_size, scratch.scales.data(),
                                       scratch.biases.data(), out.data() + r * cols);
  }
}

bool is_quant_companion(const ModelDir& model, const std::string& name) {
  for (std::string_view suffix : {".scales", ".biases"}) {
    if (!ends_with(name, suffix)) continue;
    const std::string module = name.substr(0, name.size() - suffix.size());
    return model.weights().contains(module + ".weight") && model.module_quant(module).has_value();
  }
  return false;
}

std::vector<std::string> logical_tensor_names(const ModelDir& model) {
  std::vector<std::string> names;
  for (const TensorRef& t : model.weights().tensors())
    if (!is_quant_companion(model, t.info->name)) names.push_back(t.info->name);
  return names;
}

Status check_model_dtypes(const ModelDir& model) {
  for (const TensorRef& t : model.weights().tensors())
    if (!is_model_dtype(t.info->dtype))
      return make_error(Errc::kInvalidInput, shard_where(model, t.info->name),
                        "tensor {} has dtype {}, which modelbuild does not support in a model "
                        "(F32, F16, BF16, U32, I8, U8, I32, I64 or BOOL)",
                        t.info->name, dtype_name(t.info->dtype));
  return {};
}

Result<WeightRows> WeightRows::open(const ModelDir& model, const std::string& name) {
  const ModelWeights& weights = model.weights();
  const TensorRef ref = weights.find(name);
  if (!ref) return make_error(Errc::kNotFound, model.dir().string(), "the model has no tensor {}", name);
  WeightRows w;
  w.m_name = name;
  w.m_file = shard_where(model, name);
  w.m_data = ref.bytes;
  const TensorInfo& info = *ref.info;
  std::optional<LayerQuant> quant;
  if (ends_with(name, ".weight") && info.dtype == DType::kU32) quant = model.module_quant(std::string(module_of(name)));
  if (quant) {
    const std::string module(module_of(name));
    if (quant->mode != "affine")
      return make_error(Errc::kUnsupported, w.m_file,
                        "tensor {}: quantization mode \"{}\" is not supported (affine only)", name, quant->mode);
    MB_TRY(check_quant_params(quant->bits, quant->group_size, module));
    const TensorRef scales = weights.find(module + ".scales"), biases = weights.find(module + ".biases");
    if (!scales || !biases)
      return make_error(Errc::kCorrupt, w.m_file, "quantized tensor {} has no {}.{}", name, module,
                        scales ? "biases" : "scales");
    if (scales.info->dtype != biases.info->dtype || !is_quantizable_float(scales.info->dtype) ||
        scales.info->shape != biases.info->shape)
      return make_error(Errc::kCorrupt, w.m_file, "{}.scales and {}.biases must be F32, F16 or BF16 of one shape",
                        module, module);
    auto shape = dequantized_shape(name, info.shape, scales.info->shape, quant->bits, quant->group_size);
    if (!shape.ok()) return Error{shape.error().code, w.m_file, shape.error().message};
    w.m_shape = std::move(shape).value();
    w.m_dtype = scales.info->dtype;
    w.m_scales = scales.bytes;
    w.m_biases = biases.bytes;
    w.m_quant = quant;
  } else {
    if (!is_convertible_float(info.dtype))
      return make_error(Errc::kUnsupported, w.m_file, "tensor {} has dtype {}, not a float type", name,
                        dtype_name(info.dtype));
    w.m_shape = info.shape;
    w.m_dtype = info.dtype;
  }
  w.m_cols = w.m_shape.empty() ? 1 : w.m_shape.back();
  w.m_rows = 1;
  for (size_t i = 0; i + 1 < w.m_shape.size(); ++i) w.m_rows *= w.m_shape[i];
  if (w.m_cols == 0) w.m_rows = 0;
  return w;
}

WeightRows::Scratch WeightRows::make_scratch() const {
  Scratch s;
  if (m_quant) {
    s.scales.resize(static_cast<size_t>(m_cols / m_quant->group_size));
    s.biases.resize(s.scales.size());
  }
  return s;
}

void WeightRows::read_row(int64_t row, std::span<float> out, Scratch& scratch) const {
  assert(row < m_rows && static_cast<int64_t>(out.size()) == m_cols);
  if (m_quant) {
    const int bits = m_quant->bits, gs = m_quant->group_size;
    const size_t row_packed = static_cast<size_t>(m_cols * bits / 8);
    const size_t row_scales = static_cast<size_t>(m_cols / gs) * dtype_size(m_dtype);
    dequantize_rows_f32(m_data.subspan(row * row_packed, row_packed), m_scales.subspan(row * row_scales, row_scales),
                        m_biases.subspan(row * row_scales, row_scales), m_dtype, m_cols, bits, gs, out, scratch);
    return;
  }
  const size_t row_bytes = static_cast<size_t>(m_cols) * dtype_size(m_dtype);
  (void)to_f32(m_dtype, m_data.subspan(row * row_bytes, row_bytes), out).ok();
}

// ---- Encoding -------------------------------------------------------------------

std::vector<TensorDecl> encoded_decls(const std::string& name, const std::vector<int64_t>& shape,
                                      const Encoding& encoding) {
  if (!encoding.quantize) return {{name, encoding.dtype, shape}};
  const std::string module(module_of(name));
  return {{name, DType::kU32, packed_shape(shape, encoding.quant.bits)},
          {module + ".scales", encoding.dtype, scales_shape(shape, encoding.quant.group_size)},
          {module + ".biases", encoding.dtype, scales_shape(shape, encoding.quant.group_size)}};
}

namespace {

// One worker's row buffers for encode_tensor, reused across chunks and
// tensors so that the hot loop neither allocates nor zero-fills.
struct RowBuffers {
  std::vector<float> base, fused, rounded, hat, ref_base, ref_target, scratch;
  std::vector<std::byte> out, scales, biases;
  void prepare(size_t cols) {
    for (std::vector<float>* v : {&base, &fused, &rounded, &hat, &ref_base, &ref_target, &scratch})
      if (v->size() != cols) v->resize(cols);
  }
};

}  // namespace

Result<std::optional<TensorRetention>> encode_tensor(const EncodeJob& job, ModelDirWriter& out, int threads) {
  const WeightRows& src = *job.rows;
  const WeightRows& ref = job.reference ? *job.reference : src;
  const std::vector<const LoraModule*>& ref_modules = job.reference ? job.reference_modules : job.modules;
  const bool separate_ref = job.reference != nullptr;
  const int64_t rows = src.rows(), cols = src.cols();
  const std::string& name = src.name();
  if (separate_ref && (ref.rows() != rows || ref.cols() != cols))
    return make_error(Errc::kInvalidInput, src.file(),
                      "tensor {} is [{}, {}] but the retention reference's is [{}, {}]", name, rows, cols, ref.rows(),
                      ref.cols());
  const Encoding& enc = job.encoding;
  const std::string module(module_of(name));
  const size_t tsize = dtype_size(enc.dtype);
  if (enc.quantize) MB_TRY(check_quantizable(name, enc.dtype, src.shape(), enc.quant));

  const int64_t per = row_chunk_rows(rows, cols);
  std::vector<RetentionSums> sums(static_cast<size_t>(rows == 0 ? 0 : (rows + per - 1) / per));
  // MLX's quantizer sees values of the scales' dtype. Values read unchanged
  // from a float tensor of that dtype already are (the common f16 → 8-bit
  // case), so the per-element rounding is skipped for them.
  const bool round_first = enc.quantize && enc.dtype != DType::kF32 &&
                           !(job.modules.empty() && !src.quantized() && src.dtype() == enc.dtype);
  const int bits = enc.quant.bits, gs = enc.quant.group_size;
  const size_t c = static_cast<size_t>(cols);
  const size_t row_out = enc.quantize ? c * static_cast<size_t>(bits) / 8 : c * tsize;
  const size_t row_params = enc.quantize ? c / static_cast<size_t>(gs) * tsize : 0;
  Status st = for_each_row_chunk(rows, cols, threads, [&](int64_t chunk, int64_t begin, int64_t end) -> Status {
    // Each row goes through the whole pipeline (read, fuse, round, encode,
    // decode, measure) while it is in cache; only the encoded bytes are
    // kept for the chunk. The buffers live as long as the worker thread.
    thread_local RowBuffers b;
    b.prepare(c);
    const size_t nrows = static_cast<size_t>(end - begin);
    b.out.resize(nrows * row_out);
    b.scales.resize(nrows * row_params);
    b.biases.resize(nrows * row_params);
    WeightRows::Scratch src_scratch = src.make_scratch(), ref_scratch = ref.make_scratch();
    for (int64_t r = begin; r < end; ++r) {
      const size_t i = static_cast<size_t>(r - begin);
      src.read_row(r, b.base, src_scratch);
      std::span<const float> fused = b.base;
      if (!job.modules.empty()) {
        fuse_row(job.modules, r, b.base, b.fused, b.scratch);
        fused = b.fused;
      }
      std::span<std::byte> out_row(b.out.data() + i * row_out, row_out);
      if (!enc.quantize) {
        MB_TRY(from_f32(fused, enc.dtype, out_row));
        if (job.measure) round_to_dtype(fused, b.hat, enc.dtype);
      } else {
        std::span<const float> q_in = fused;
        if (round_first) {
          round_to_dtype(fused, b.rounded, enc.dtype);
          q_in = b.rounded;
        }
        std::span<std::byte> s_row(b.scales.data() + i * row_params, row_params),
            b_row(b.biases.data() + i * row_params, row_params);
        MB_TRY(quantize_rows(name, q_in, cols, enc.dtype, enc.quant, out_row, s_row, b_row));
        if (job.measure) dequantize_rows_f32(out_row, s_row, b_row, enc.dtype, cols, bits, gs, b.hat, src_scratch);
      }
      if (!job.measure) continue;
      // Row by row, like measure_retention, so both give identical figures.
      RetentionSums& sum = sums[static_cast<size_t>(chunk)];
      if (separate_ref) {
        ref.read_row(r, b.ref_base, ref_scratch);
        fuse_row(ref_modules, r, b.ref_base, b.ref_target, b.scratch);
        sum.add(b.ref_base, b.ref_target, b.hat);
      } else {
        sum.add(b.base, fused, b.hat);
      }
    }
    const uint64_t first = static_cast<uint64_t>(begin * cols);
    if (!enc.quantize) return out.write_tensor_part(name, first * tsize, b.out);
    MB_TRY(out.write_tensor_part(name, first * static_cast<uint64_t>(bits) / 8, b.out));
    MB_TRY(out.write_tensor_part(module + ".scales", first / static_cast<uint64_t>(gs) * tsize, b.scales));
    return out.write_tensor_part(module + ".biases", first / static_cast<uint64_t>(gs) * tsize, b.biases);
  });
  MB_TRY(st);
  if (!job.measure) return std::optional<TensorRetention>();
  TensorRetention t{name, {}};
  for (const RetentionSums& s : sums) t.sums += s;
  return std::optional<TensorRetention>(std::move(t));
}

// ---- Model-level helpers ----------------------------------------------------------

const char* fuse_mode_name(FuseMode mode) { return mode == FuseMode::kInplace ? "inplace" : "dequantize"; }

std::optional<std::string> torch_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF16:
      return "float16";
    case DType::kBF16:
      return "bfloat16";
    case DType::kF32:
      return "float32";
    default:
      return std::nullopt;
  }
}

std::optional<DType> dtype_from_torch_name(std::string_view name) {
  if (name == "float16") return DType::kF16;
  if (name == "bfloat16") return DType::kBF16;
  if (name == "float32") return DType::kF32;
  return std::nullopt;
}

DType default_dtype(const ModelDir& model) {
  for (const TensorRef& t : model.weights().tensors())
    if (is_quant_companion(model, t.info->name)) return t.info->dtype;
  auto it = model.config().find("torch_dtype");
  if (it != model.config().end() && it->is_string())
    if (auto d = dtype_from_torch_name(it->get<std::string>())) return *d;
  for (const TensorRef& t : model.weights().tensors())
    if (t.info->shape.size() == 2 && is_quantizable_float(t.info->dtype)) return t.info->dtype;
  return DType::kF32;
}

BaseShapeLookup base_shape_lookup(const ModelDir& model) {
  return [&model](const std::string& name) -> std::optional<std::pair<int64_t, int64_t>> {
    auto rows = WeightRows::open(model, name);
    if (!rows.ok()) return std::nullopt;
    return std::make_pair(rows->rows(), rows->cols());
  };
}

// ---- fuse_model -------------------------------------------------------------------
//
// In phases: check the options against the base, map each base tensor to the
// adapter modules that change it (validating every adapter first), plan one
// task per output tensor, then create the writer and run the tasks in order.

// Which modules change which base tensor, in adapter order. Validation
// first: nothing is written for an adapter that does not fit the base.
Result<AdaptedModules> fuse_adapted_modules(const ModelDir& base, const fs::path& base_dir,
                                            const std::vector<Adapter>& adapters, Reporter& reporter) {
  AdaptedModules adapted;
  for (const Adapter& a : adapters) {
    for (const std::string& w : a.warnings) reporter.warn(w);
    for (const LoraModule& m : a.modules) {
      const std::string weight = m.weight_name();
      if (base.weights().contains(weight)) {
        auto rows = WeightRows::open(base, weight);
        if (!rows.ok())
          return make_error(rows.error().code, a.weights_file.string(), "module {} adapts base tensor {}: {}", m.module,
                            weight, rows.error().to_string());
      }
    }
    MB_TRY(validate_adapter(a, base_shape_lookup(base), base_dir.string()));
    for (const LoraModule& m : a.modules) adapted[m.weight_name()].push_back(&m);
  }
  return adapted;
}

// The output's config.json: the base's, with quantization and torch_dtype
// describing what is written.
nlohmann::ordered_json fused_config(const ModelDir& base, DType out_dtype, const FuseOptions& options) {
  nlohmann::ordered_json config = base.config();
  if (options.mode != FuseMode::kInplace) {
    set_quantization(config, nullptr);
    if (config.contains("torch_dtype")) config["torch_dtype"] = *torch_dtype_name(out_dtype);
  }
  if (options.quantize) {
    QuantizationConfig q =
        QuantizationConfig::uniform({options.quantize->bits, options.quantize->group_size, "affine"});
    set_quantization(config, &q);
  }
  return config;
}

Status check_fuse_options(const ModelDir& base, const fs::path& base_dir, const FuseOptions& options) {
  const bool inplace = options.mode == FuseMode::kInplace;
  if (options.quantize) {
    if (inplace)
      return make_error(Errc::kInvalidInput, "",
                        "in-place fusion keeps the base's own quantization; quantizing to other bits needs mode "
                        "dequantize");
    MB_TRY(check_quant_params(options.quantize->bits, options.quantize->group_size, "fuse"));
  }
  if (inplace && !base.quantization().present())
    return make_error(Errc::kInvalidInput, (base_dir / "config.json").string(),
                      "in-place fusion re-quantizes with the base's own bits, but this base is not quantized "
                      "(config.json has no quantization); use mode dequantize");
  if (options.dtype && !torch_dtype_name(*options.dtype))
    return make_error(Errc::kInvalidInput, "", "fusion output dtype must be float16, bfloat16 or float32, not {}",
                      dtype_name(*options.dtype));
  return {};
}

namespace {

// One output tensor of a fusion: copied through, or encoded.
struct FuseTask {
  std::string name;
  std::span<const std::byte> copy;  // when !rows
  std::optional<WeightRows> rows;
  std::vector<const LoraModule*> modules;
  Encoding encoding;
};

struct FusePlan {
  std::vector<FuseTask> tasks;
  std::vector<TensorDecl> decls;
  std::vector<std::string> not_divisible;  // quantization candidates a group does not divide
  std::set<int> inplace_bits;
};

std::string inplace_what(const std::set<int>& bits) {
  if (bits.size() == 1) return fmt::format("{}-bit in-place fusion", *bits.begin());
  return fmt::format("in-place fusion ({}-bit)", fmt::join(bits, "/"));
}

// How an encoded task's tensor is written: re-quantized with its own bits
// (in place), quantized to the requested bits, or converted to float.
Encoding choose_encoding(const FuseTask& task, DType out_dtype, const FuseOptions& options, FusePlan& plan) {
  const WeightRows& rows = *task.rows;
  const bool inplace = options.mode == FuseMode::kInplace;
  if (inplace && rows.quantized()) {
    const LayerQuant& q = *rows.quant();
    plan.inplace_bits.insert(q.bits);
    return {true, rows.dtype(), {q.bits, q.group_size, options.kernel}};
  }
  const bool candidate = options.quantize && is_quantization_candidate(task.name, rows.shape(), rows.dtype());
  if (candidate && rows.cols() % options.quantize->group_size == 0)
    return {true, out_dtype, {options.quantize->bits, options.quantize->group_size, options.kernel}};
  if (candidate) plan.not_divisible.push_back(task.name);  // the quantize step warns about these too: so does the fuse
  return {false, inplace ? rows.dtype() : out_dtype, {}};
}

// One task per output tensor, in the base's order, with its declaration.
Result<FusePlan> plan_fuse(const ModelDir& base, const AdaptedModules& adapted, DType out_dtype,
                           const FuseOptions& options) {
  const bool inplace = options.mode == FuseMode::kInplace;
  FusePlan plan;
  for (const TensorRef& t : base.weights().tensors()) {
    const std::string& name = t.info->name;
    const auto mods = adapted.find(name);
    const bool is_adapted = mods != adapted.end();
    if (is_quant_companion(base, name)) {
      // Written with their weight when it is re-encoded; dropped when
      // dequantizing; otherwise copied below.
      const std::string weight(module_of(name));
      if (!inplace || adapted.count(weight + ".weight")) continue;
    }
    FuseTask task;
    task.name = name;
    auto rows = WeightRows::open(base, name);
    if (!rows.ok() && rows.error().code != Errc::kUnsupported) return rows.error();
    const bool encode =
        rows.ok() &&
        (is_adapted || (!inplace && (rows->quantized() || rows->dtype() != out_dtype || options.quantize.has_value())));
    if (!encode) {
      task.copy = t.bytes;
      plan.decls.push_back({name, t.info->dtype, t.info->shape});
      plan.tasks.push_back(std::move(task));
      continue;
    }
    task.rows = std::move(rows).value();
    if (is_adapted) task.modules = mods->second;
    task.encoding = choose_encoding(task, out_dtype, options, plan);
    for (TensorDecl& d : encoded_decls(name, task.rows->shape(), task.encoding)) plan.decls.push_back(std::move(d));
    plan.tasks.push_back(std::move(task));
  }
  return plan;
}

// What rounded the weights, for the retention verdict.
RetentionReport empty_retention(const FusePlan& plan, DType out_dtype, const FuseOptions& options) {
  RetentionReport r;
  r.inplace = options.mode == FuseMode::kInplace;
  r.bits = plan.inplace_bits.empty() ? 0 : *plan.inplace_bits.begin();
  r.what = r.inplace ? inplace_what(plan.inplace_bits) : fmt::format("{} fusion", *torch_dtype_name(out_dtype));
  if (options.quantize) {
    r.bits = options.quantize->bits;
    r.what = fmt::format("{}-bit quantization", options.quantize->bits);
  }
  return r;
}

// Writes every task in order, measuring retention over the adapted ones.
Status run_fuse_tasks(const FusePlan& plan, ModelDirWriter& writer, const FuseOptions& options, Reporter& reporter,
                      FuseResult& result) {
  const int threads = resolve_threads(options.threads);
  int64_t done = 0;
  for (const FuseTask& task : plan.tasks) {
    if (!task.rows) {
      MB_TRY(writer.write_tensor(task.name, task.copy));
    } else {
      EncodeJob job;
      job.rows = &*task.rows;
      job.modules = task.modules;
      job.encoding = task.encoding;
      job.measure = !task.modules.empty();
      MB_ASSIGN(std::optional<TensorRetention> r, encode_tensor(job, writer, threads));
      if (r) {
        result.retention.add_tensor(std::move(*r));
        ++result.adapted;
      }
    }
    reporter.progress(options.step, static_cast<uint64_t>(++done), plan.tasks.size(), "tensors");
  }
  return {};
}

}  // namespace

Result<FuseResult> fuse_model(FileSystem& fs, const fs::path& base_dir, const std::vector<Adapter>& adapters,
                              const fs::path& out_dir, const FuseOptions& options, Reporter& reporter) {
  MB_ASSIGN(ModelDir base, ModelDir::open(fs, base_dir));
  MB_TRY(check_model_dtypes(base));
  MB_TRY(check_fuse_options(base, base_dir, options));
  MB_ASSIGN(AdaptedModules adapted, fuse_adapted_modules(base, base_dir, adapters, reporter));
  const bool inplace = options.mode == FuseMode::kInplace;
  const DType out_dtype = inplace ? default_dtype(base) : options.dtype.value_or(default_dtype(base));
  MB_ASSIGN(FusePlan plan, plan_fuse(base, adapted, out_dtype, options));
  if (!plan.not_divisible.empty())
    reporter.warn(fmt::format("{} tensor(s) stay float because group size {} does not divide their input dimension: {}",
                              plan.not_divisible.size(), options.quantize->group_size,
                              fmt::join(plan.not_divisible, ", ")));

  ModelDirOptions dir_options;
  dir_options.max_shard_bytes = options.max_shard_bytes;
  dir_options.source_dir = base_dir;
  MB_ASSIGN(std::unique_ptr<ModelDirWriter> writer,
            ModelDirWriter::create(fs, out_dir, plan.decls, fused_config(base, out_dtype, options), dir_options));
  FuseResult result;
  result.dtype = out_dtype;
  result.retention = empty_retention(plan, out_dtype, options);
  MB_TRY(run_fuse_tasks(plan, *writer, options, reporter, result));
  MB_TRY(writer->finish());
  result.tensors = static_cast<int64_t>(plan.decls.size());
  result.bytes = writer->plan().total_size;
  return result;
}

}  // namespace mb
