#include "tensors/quantize_model.h"

#include <fmt/ranges.h>

#include <map>

#include "base/parallel.h"
#include "base/reporter.h"
#include "tensors/fuse.h"

namespace mb {

namespace {

struct Task {
  std::string name;
  std::span<const std::byte> copy;  // when !rows
  std::optional<WeightRows> rows;
  Encoding encoding;
};

// What becomes of one float-readable tensor: nullopt keeps it as it is
// (copied), otherwise it is encoded.
using Decide = std::function<Result<std::optional<Encoding>>(const WeightRows& rows)>;

struct Conversion {
  std::vector<Task> tasks;
  std::vector<TensorDecl> decls;
};

Result<Conversion> plan_conversion(const ModelDir& model, const Decide& decide) {
  Conversion c;
  for (const TensorRef& t : model.weights().tensors()) {
    const std::string& name = t.info->name;
    if (is_quant_companion(model, name)) continue;  // re-encoded through its weight
    Task task;
    task.name = name;
    auto rows = WeightRows::open(model, name);
    if (!rows.ok() && rows.error().code != Errc::kUnsupported) return rows.error();
    std::optional<Encoding> enc;
    if (rows.ok()) {
      MB_ASSIGN(enc, decide(*rows));
    }
    if (!enc) {
      if (rows.ok() && rows->quantized())
        return make_error(Errc::kInternal, rows->file(), "quantized tensor {} cannot be copied without its scales",
                          name);
      task.copy = t.bytes;
      c.decls.push_back({name, t.info->dtype, t.info->shape});
    } else {
      task.rows = std::move(rows).value();
      task.encoding = *enc;
      for (TensorDecl& d : encoded_decls(name, task.rows->shape(), *enc)) c.decls.push_back(std::move(d));
    }
    c.tasks.push_back(std::move(task));
  }
  return c;
}

// Writes the planned conversion; measures retention for the tensors that
// `reference_modules` names (when `reference` is set).
Result<ConvertResult> run_conversion(FileSystem& fs, const ModelDir& model, const fs::path& out_dir,
                                     Conversion conversion, nlohmann::ordered_json config, uint64_t max_shard_bytes,
                                     int threads, const std::string& step, const ModelDir* reference,
                                     const std::map<std::string, std::vector<const LoraModule*>>& reference_modules,
                                     Reporter& reporter, DirLayout layout = DirLayout::kMlx) {
  ModelDirOptions dir_options;
  dir_options.max_shard_bytes = max_shard_bytes;
  dir_options.source_dir = model.dir();
  dir_options.layout = layout;
  MB_ASSIGN(std::unique_ptr<ModelDirWriter> writer,
            ModelDirWriter::create(fs, out_dir, conversion.decls, std::move(config), dir_options));
  ConvertResult result;
  RetentionReport retention;
  threads = resolve_threads(threads);
  int64_t done = 0;
  for (const Task& task : conversion.tasks) {
    if (!task.rows) {
      MB_TRY(writer->write_tensor(task.name, task.copy));
    } else {
      EncodeJob job;
      job.rows = &*task.rows;
      job.encoding = task.encoding;
      std::optional<WeightRows> ref_rows;
      if (reference) {
        auto mods = reference_modules.find(task.name);
        if (mods != reference_modules.end()) {
          auto r = WeightRows::open(*reference, task.name);
          if (!r.ok()) return r.error();
          ref_rows = std::move(r).value();
          job.measure = true;
          job.reference = &*ref_rows;
          job.reference_modules = mods->second;
        }
      }
      MB_ASSIGN(std::optional<TensorRetention> r, encode_tensor(job, *writer, threads));
      if (r) retention.add_tensor(std::move(*r));
      if (task.encoding.quantize) ++result.quantized;
    }
    reporter.progress(step, static_cast<uint64_t>(++done), conversion.tasks.size(), "tensors");
  }
  MB_TRY(writer->finish());
  result.tensors = static_cast<int64_t>(conversion.decls.size());
  result.bytes = writer->plan().total_size;
  if (reference) result.retention = std::move(retention);
  return result;
}

Status check_dtype(DType dtype) {
  if (!torch_dtype_name(dtype))
    return make_error(Errc::kInvalidInput, "", "dtype must be float16, bfloat16 or float32, not {}", dtype_name(dtype));
  return Status::ok_status();
}

bool ends_with_weight(const std::string& name) {
  return name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0;
}

void set_torch_dtype(nlohmann::ordered_json& config, DType dtype) {
  if (config.contains("torch_dtype")) config["torch_dtype"] = *torch_dtype_name(dtype);
}

}  // namespace

bool is_quantization_candidate(const std::string& name, const std::vector<int64_t>& shape, DType dtype) {
  const auto ends_with = [&](std::string_view s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  return ends_with(".weight") && !ends_with("norm.weight") && shape.size() == 2 && is_convertible_float(dtype);
}

Result<ConvertResult> quantize_model(FileSystem& fs, const fs::path& model_dir, const fs::path& out_dir,
                                     const QuantizeOptions& options, const RetentionReference* reference,
                                     Reporter& reporter) {
  MB_TRY(check_quant_params(options.bits, options.group_size, "quantize"));
  if (options.dtype) MB_TRY(check_dtype(*options.dtype));
  for (const auto& [module, params] : options.overrides)
    if (params) MB_TRY(check_quant_params(params->bits, params->group_size, module));
  MB_ASSIGN(ModelDir model, ModelDir::open(fs, model_dir));
  MB_TRY(check_model_dtypes(model));
  const DType dtype = options.dtype.value_or(default_dtype(model));

  for (const auto& [module, params] : options.overrides)
    if (!model.weights().contains(module + ".weight"))
      return make_error(Errc::kInvalidInput, model_dir.string(),
                        "quantization override for module {}, which the model does not have ({}.weight)", module,
                        module);

  std::vector<std::string> not_divisible;
  const Decide decide = [&](const WeightRows& rows) -> Result<std::optional<Encoding>> {
    const std::string module(module_of(rows.name()));
    const auto ov = options.overrides.find(module);
    std::optional<LayerQuant> q;
    if (ov != options.overrides.end() && ends_with_weight(rows.name())) {
      q = ov->second;
      if (q && rows.cols() % q->group_size != 0)
        return make_error(Errc::kInvalidInput, rows.file(),
                          "group size {} does not divide the input dimension {} of tensor {} (override for {})",
                          q->group_size, rows.cols(), rows.name(), module);
    } else if (is_quantization_candidate(rows.name(), rows.shape(), rows.dtype())) {
      if (rows.cols() % options.group_size == 0)
        q = LayerQuant{options.bits, options.group_size, "affine"};
      else
        not_divisible.push_back(rows.name());
    }
    if (q) return std::optional<Encoding>(Encoding{true, dtype, {q->bits, q->group_size, options.kernel}});
    if (!rows.quantized() && rows.dtype() == dtype) return std::optional<Encoding>();
    return std::optional<Encoding>(Encoding{false, dtype, {}});
  };
  MB_ASSIGN(Conversion conversion, plan_conversion(model, decide));
  if (!not_divisible.empty())
    reporter.warn(fmt::format("{} tensor(s) stay float because group size {} does not divide their input dimension: {}",
                              not_divisible.size(), options.group_size, fmt::join(not_divisible, ", ")));

  nlohmann::ordered_json config = model.config();
  QuantizationConfig q = QuantizationConfig::uniform({options.bits, options.group_size, "affine"});
  for (const auto& [module, params] : options.overrides) q.set_override(module, params);
  set_quantization(config, &q);
  set_torch_dtype(config, dtype);

  std::optional<ModelDir> ref_base;
  std::map<std::string, std::vector<const LoraModule*>> ref_modules;
  if (reference) {
    MB_ASSIGN(ref_base, ModelDir::open(fs, reference->base_dir));
    for (const Adapter& a : reference->adapters) {
      MB_TRY(validate_adapter(a, base_shape_lookup(*ref_base), reference->base_dir.string()));
      for (const LoraModule& m : a.modules) ref_modules[m.weight_name()].push_back(&m);
    }
    for (const auto& [weight, mods] : ref_modules)
      if (!model.weights().contains(weight))
        return make_error(Errc::kInvalidInput, model_dir.string(),
                          "the retention reference adapts {}, which the model being quantized does not have", weight);
  }
  MB_ASSIGN(ConvertResult result,
            run_conversion(fs, model, out_dir, std::move(conversion), std::move(config), options.max_shard_bytes,
                           options.threads, options.step, ref_base ? &*ref_base : nullptr, ref_modules, reporter));
  result.dtype = dtype;
  if (result.retention) result.retention->bits = options.bits;
  if (result.retention)
    result.retention->what = fmt::format("{}-bit quantization{}", options.bits,
                                         options.overrides.empty() ? "" : " (with per-module overrides)");
  return result;
}

Result<ConvertResult> dequantize_model(FileSystem& fs, const fs::path& model_dir, const fs::path& out_dir,
                                       const DequantizeOptions& options, Reporter& reporter) {
  if (options.dtype) MB_TRY(check_dtype(*options.dtype));
  MB_ASSIGN(ModelDir model, ModelDir::open(fs, model_dir));
  MB_TRY(check_model_dtypes(model));
  const DType dtype = options.dtype.value_or(default_dtype(model));
  const Decide decide = [&](const WeightRows& rows) -> Result<std::optional<Encoding>> {
    if (!rows.quantized() && rows.dtype() == dtype) return std::optional<Encoding>();
    return std::optional<Encoding>(Encoding{false, dtype, {}});
  };
  MB_ASSIGN(Conversion conversion, plan_conversion(model, decide));
  nlohmann::ordered_json config = model.config();
  set_quantization(config, nullptr);
  set_torch_dtype(config, dtype);
  if (options.layout == DirLayout::kHuggingFace) config["torch_dtype"] = *torch_dtype_name(dtype);
  MB_ASSIGN(ConvertResult result,
            run_conversion(fs, model, out_dir, std::move(conversion), std::move(config), options.max_shard_bytes,
                           options.threads, options.step, nullptr, {}, reporter, options.layout));
  result.dtype = dtype;
  return result;
}

}  // namespace mb
