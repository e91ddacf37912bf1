#include "rules/export.h"

#include "rules/fuse.h"
#include "rules/model_params.h"
#include "tensors/adapters.h"
#include "tensors/fuse.h"
#include "tensors/gguf_export.h"
#include "tensors/hf_export.h"
#include "tensors/retention_gguf.h"
#include "tensors/tensor_source.h"

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

// The bits a GGUF type mostly stores weights in, for the retention
// verdict's advice (0: a float type).
int gguf_type_bits(GgufFileType t) {
  switch (t) {
    case GgufFileType::kQ8_0:
      return 8;
    case GgufFileType::kQ6_K:
      return 6;
    case GgufFileType::kQ5_K_M:
      return 5;
    case GgufFileType::kQ4_0:
    case GgufFileType::kQ4_K_M:
      return 4;
    default:
      return 0;
  }
}

// Same wording and levels as the fuse rule's report_retention.
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

// What the GGUF is written from: the input "model" as it is, or (with
// fuse_dtype) base + adapters fused in the same streaming pass, so that no
// float model is written; the bytes are the same either way
// (tensors/tensor_source.h).
Result<std::unique_ptr<TensorSource>> gguf_source(StepContext& ctx, const ExportParams& p,
                                                  const std::vector<Adapter>& adapters) {
  if (!p.fuse_dtype) {
    const StepInput* model = ctx.input("model");
    if (!model) return make_error(Errc::kInternal, ctx.step_label, "export step without a model");
    return TensorSource::open_model(ctx.fs, model->path);
  }
  const StepInput* base = ctx.input("base");
  if (!base) return make_error(Errc::kInternal, ctx.step_label, "fusing export step without a base");
  MB_ASSIGN(std::optional<DType> dtype, dtype_from_param(*p.fuse_dtype));
  return TensorSource::open_fused(ctx.fs, base->path, adapters, dtype, ctx.reporter);
}

Status run_gguf(StepContext& ctx, const ExportParams& p) {
  GgufExportOptions o;
  o.file_type = *gguf_file_type_from_name(p.gguf_type);
  o.threads = ctx.threads;
  const StepInput* base = ctx.input("base");
  std::vector<fs::path> dirs;
  for (const StepInput* in : ctx.inputs_with_prefix("adapter.")) dirs.push_back(in->path);
  MB_ASSIGN(std::vector<Adapter> adapters, load_adapters(ctx.fs, dirs));
  MB_ASSIGN(std::unique_ptr<TensorSource> source, gguf_source(ctx, p, adapters));
  const fs::path out = ctx.output_dir / kGgufFileName;
  MB_ASSIGN(GgufExportStats s, export_gguf(ctx.fs, *source, out, o));
  ctx.report["format"] = "gguf";
  ctx.report["gguf_type"] = p.gguf_type;
  ctx.report["bytes"] = s.bytes;
  ctx.report["tensors_per_type"] = s.tensors_per_type;
  if (!base) return {};
  MB_ASSIGN(RetentionReport r,
            measure_gguf_retention(ctx.fs, out, base->path, adapters, fmt::format("GGUF {} export", p.gguf_type),
                                   gguf_type_bits(o.file_type), ctx.threads, ctx.reporter));
  report_retention(ctx, r);
  return {};
}

}  // namespace

Status ExportRule::check_params(const nlohmann::json& params) const { return ExportParams::parse(params).status(); }

std::vector<ReportField> ExportRule::report_fields() const { return {{kDeltaRetention, "/retention/retained"}}; }

Status ExportRule::run(StepContext& ctx) const {
  MB_ASSIGN(ExportParams p, ExportParams::parse(ctx.params));
  if (p.format == "gguf") return run_gguf(ctx, p);
  const StepInput* model = ctx.input("model");
  if (!model) return make_error(Errc::kInternal, ctx.step_label, "export step without a model");
  return run_hf(ctx, *model);
}

}  // namespace mb
