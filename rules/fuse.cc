#include "rules/fuse.h"

#include "rules/model_params.h"
#include "tensors/adapters.h"
#include "tensors/fuse.h"
#include "tensors/retention.h"

namespace mb {
namespace {

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

Status FuseRule::check_params(const nlohmann::json& params) const { return FuseParams::parse(params).status(); }

std::vector<ReportField> FuseRule::report_fields() const { return {{kDeltaRetention, "/retention/retained"}}; }

Status FuseRule::run(StepContext& ctx) const {
  const StepInput* base = ctx.input("base");
  if (!base) return make_error(Errc::kInternal, ctx.step_label, "fuse step without a base");
  MB_ASSIGN(FuseParams p, FuseParams::parse(ctx.params));
  MB_ASSIGN(auto adapters, adapters_with_prefix(ctx, "adapter."));
  FuseOptions o;
  o.mode = p.inplace ? FuseMode::kInplace : FuseMode::kDequantize;
  MB_ASSIGN(o.dtype, dtype_from_param(p.dtype));
  MB_ASSIGN(o.kernel, quantizer_from_param(p.quantizer));
  if (p.bits) o.quantize = QuantParams{*p.bits, p.group_size, o.kernel};
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

}  // namespace mb
