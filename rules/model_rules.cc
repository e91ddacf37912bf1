#include "rules/model_rules.h"

#include "tensors/adapters.h"
#include "tensors/fuse.h"
#include "tensors/quantize_model.h"
#include "tensors/retention.h"

namespace mb {
namespace {

Result<std::optional<DType>> dtype_param(const StepContext& ctx) {
  std::string name = ctx.params.value("dtype", std::string("auto"));
  if (name == "auto") return std::optional<DType>();
  if (name == "float16") return std::optional<DType>(DType::kF16);
  if (name == "bfloat16") return std::optional<DType>(DType::kBF16);
  if (name == "float32") return std::optional<DType>(DType::kF32);
  return make_error(Errc::kInvalidInput, ctx.step_label, "unknown dtype '{}'", name);
}

QuantKernel kernel_param(const StepContext& ctx) {
  return ctx.params.value("quantizer", std::string("gpu")) == "cpu" ? QuantKernel::kCpu : QuantKernel::kGpu;
}

Result<std::vector<Adapter>> adapters_with_prefix(const StepContext& ctx, std::string_view prefix) {
  std::vector<fs::path> dirs;
  for (const StepInput* in : ctx.inputs_with_prefix(prefix)) dirs.push_back(in->path);
  return load_adapters(ctx.fs, dirs);
}

// Puts a retention report into the step report and says in plain words, at
// build time, when quantization erased the adapter (a warning below 0.8,
// where the verdict starts giving advice).
void report_retention(StepContext& ctx, const RetentionReport& r) {
  if (!r.measured()) return;
  ctx.report["retention"] = r.to_json();
  const double kept = r.retained().value_or(0.0);
  ctx.reporter.report({EventKind::kMessage, kept < 0.8 ? Level::kWarn : Level::kInfo, ctx.step_label, r.verdict(),
                       {{"retained", kept}}});
}

}  // namespace

Status FuseRule::run(StepContext& ctx) const {
  const StepInput* base = ctx.input("base");
  if (!base) return make_error(Errc::kInternal, ctx.step_label, "fuse step without a base");
  MB_ASSIGN(auto adapters, adapters_with_prefix(ctx, "adapter."));
  FuseOptions o;
  o.mode = ctx.params.value("mode", std::string("dequantize")) == "inplace" ? FuseMode::kInplace : FuseMode::kDequantize;
  MB_ASSIGN(o.dtype, dtype_param(ctx));
  o.kernel = kernel_param(ctx);
  o.threads = ctx.threads;
  o.step = ctx.step_label;
  MB_ASSIGN(FuseResult res, fuse_model(ctx.fs, base->path, adapters, ctx.output_dir, o, ctx.reporter));
  ctx.report["dtype"] = dtype_name(res.dtype);
  if (o.mode == FuseMode::kInplace) report_retention(ctx, res.retention);
  return {};
}

Status QuantizeRule::run(StepContext& ctx) const {
  const StepInput* model = ctx.input("model");
  if (!model) return make_error(Errc::kInternal, ctx.step_label, "quantize step without a model");
  MB_ASSIGN(std::optional<DType> dtype, dtype_param(ctx));
  const nlohmann::json& bits = ctx.params.contains("bits") ? ctx.params["bits"] : nlohmann::json();
  if (bits.is_null()) {
    DequantizeOptions o;
    o.dtype = dtype;
    o.threads = ctx.threads;
    o.step = ctx.step_label;
    MB_ASSIGN(ConvertResult res, dequantize_model(ctx.fs, model->path, ctx.output_dir, o, ctx.reporter));
    ctx.report["dtype"] = dtype_name(res.dtype);
    return {};
  }
  QuantizeOptions o;
  o.bits = bits.get<int>();
  o.group_size = ctx.params.value("group_size", 64);
  o.kernel = kernel_param(ctx);
  o.dtype = dtype;
  o.threads = ctx.threads;
  o.step = ctx.step_label;
  MB_ASSIGN(ConvertResult res, quantize_model(ctx.fs, model->path, ctx.output_dir, o, nullptr, ctx.reporter));
  ctx.report["dtype"] = dtype_name(res.dtype);
  ctx.report["bits"] = o.bits;
  ctx.report["group_size"] = o.group_size;
  return {};
}

Status RetentionRule::run(StepContext& ctx) const {
  const StepInput* model = ctx.input("model");
  const StepInput* base = ctx.input("reference.base");
  if (!model || !base) return make_error(Errc::kInternal, ctx.step_label, "retention step without model or base");
  MB_ASSIGN(auto adapters, adapters_with_prefix(ctx, "reference.adapter."));
  // Name what rounded the weights from the model's own quantization.
  std::string what = "float fusion";
  int bits = 0;
  if (auto text = ctx.fs.read_file(model->path / "config.json"); text.ok()) {
    auto cfg = nlohmann::json::parse(*text, nullptr, false);
    if (!cfg.is_discarded() && cfg.contains("quantization") && cfg["quantization"].contains("bits")) {
      bits = cfg["quantization"]["bits"].get<int>();
      what = fmt::format("{}-bit quantization", bits);
    }
  }
  MB_ASSIGN(RetentionReport r,
            measure_retention(ctx.fs, model->path, base->path, adapters, what, bits, ctx.threads, ctx.reporter));
  report_retention(ctx, r);
  return write_file_atomic(ctx.fs, ctx.output_dir / "retention.json", r.to_json().dump(2) + "\n");
}

}  // namespace mb
