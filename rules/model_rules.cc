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

// bits, group_size and quantizer; nullopt when bits is absent or null.
std::optional<QuantParams> quant_param(const StepContext& ctx) {
  if (!ctx.params.contains("bits") || ctx.params["bits"].is_null()) return std::nullopt;
  return QuantParams{ctx.params["bits"].get<int>(), ctx.params.value("group_size", kDefaultGroupSize),
                     kernel_param(ctx)};
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
  ctx.reporter.report({EventKind::kMessage,
                       kept < 0.8 ? Level::kWarn : Level::kInfo,
                       ctx.step_label,
                       r.verdict(),
                       {{"retained", kept}}});
}

}  // namespace

Status FuseRule::run(StepContext& ctx) const {
  const StepInput* base = ctx.input("base");
  if (!base) return make_error(Errc::kInternal, ctx.step_label, "fuse step without a base");
  MB_ASSIGN(auto adapters, adapters_with_prefix(ctx, "adapter."));
  FuseOptions o;
  o.mode =
      ctx.params.value("mode", std::string("dequantize")) == "inplace" ? FuseMode::kInplace : FuseMode::kDequantize;
  MB_ASSIGN(o.dtype, dtype_param(ctx));
  o.kernel = kernel_param(ctx);
  o.quantize = quant_param(ctx);
  o.threads = ctx.threads;
  o.step = ctx.step_label;
  MB_ASSIGN(FuseResult res, fuse_model(ctx.fs, base->path, adapters, ctx.output_dir, o, ctx.reporter));
  ctx.report["dtype"] = dtype_name(res.dtype);
  if (o.quantize) {
    ctx.report["bits"] = o.quantize->bits;
    ctx.report["group_size"] = o.quantize->group_size;
  }
  if (o.mode == FuseMode::kInplace || o.quantize) report_retention(ctx, res.retention);
  return {};
}

Status QuantizeRule::run(StepContext& ctx) const {
  const StepInput* model = ctx.input("model");
  if (!model) return make_error(Errc::kInternal, ctx.step_label, "quantize step without a model");
  MB_ASSIGN(std::optional<DType> dtype, dtype_param(ctx));
  const std::optional<QuantParams> q = quant_param(ctx);
  if (!q) {
    DequantizeOptions o;
    o.dtype = dtype;
    o.threads = ctx.threads;
    o.step = ctx.step_label;
    MB_ASSIGN(ConvertResult res, dequantize_model(ctx.fs, model->path, ctx.output_dir, o, ctx.reporter));
    ctx.report["dtype"] = dtype_name(res.dtype);
    return {};
  }
  QuantizeOptions o;
  o.bits = q->bits;
  o.group_size = q->group_size;
  o.kernel = q->kernel;
  o.dtype = dtype;
  o.threads = ctx.threads;
  o.step = ctx.step_label;
  MB_ASSIGN(ConvertResult res, quantize_model(ctx.fs, model->path, ctx.output_dir, o, nullptr, ctx.reporter));
  ctx.report["dtype"] = dtype_name(res.dtype);
  ctx.report["bits"] = o.bits;
  ctx.report["group_size"] = o.group_size;
  return {};
}

}  // namespace mb
