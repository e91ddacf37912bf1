#include "rules/export.h"

#include "rules/fuse.h"
#include "rules/model_params.h"
#include "tensors/fuse.h"
#include "tensors/hf_export.h"

namespace mb {
namespace {

Status run_hf(StepContext& ctx, const StepInput& model) {
  HfExportOptions o;
  o.threads = ctx.threads;
  o.step = ctx.step_label;
  MB_ASSIGN(HfExportStats s, export_hf(ctx.fs, model.path, ctx.output_dir, o, ctx.reporter));
  ctx.report["format"] = "hf";
  ctx.report["dtype"] = dtype_name(s.dtype);
  ctx.report["tensors"] = s.tensors;
  ctx.report["shards"] = s.shards;
  ctx.report["bytes"] = s.bytes;
  return {};
}

Status run_gguf(StepContext& ctx, const StepInput& model, const ExportParams& p) {
  (void)model;
  (void)p;
  return make_error(Errc::kUnsupported, ctx.step_label, "this build has no GGUF writer yet");
}

}  // namespace

Status ExportRule::check_params(const nlohmann::json& params) const { return ExportParams::parse(params).status(); }

std::vector<ReportField> ExportRule::report_fields() const { return {{kDeltaRetention, "/retention/retained"}}; }

Status ExportRule::run(StepContext& ctx) const {
  const StepInput* model = ctx.input("model");
  if (!model) return make_error(Errc::kInternal, ctx.step_label, "export step without a model");
  MB_ASSIGN(ExportParams p, ExportParams::parse(ctx.params));
  if (p.format == "hf") return run_hf(ctx, *model);
  return run_gguf(ctx, *model, p);
}

}  // namespace mb
