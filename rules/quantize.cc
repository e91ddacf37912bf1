#include "rules/quantize.h"

#include "rules/model_params.h"
#include "tensors/quantize_model.h"

namespace mb {

Status QuantizeRule::check_params(const nlohmann::json& params) const { return QuantizeParams::parse(params).status(); }

Status QuantizeRule::run(StepContext& ctx) const {
  const StepInput* model = ctx.input("model");
  if (!model) return make_error(Errc::kInternal, ctx.step_label, "quantize step without a model");
  MB_ASSIGN(QuantizeParams p, QuantizeParams::parse(ctx.params));
  MB_ASSIGN(std::optional<DType> dtype, dtype_from_param(p.dtype));
  if (!p.bits) {
    DequantizeOptions o;
    o.dtype = dtype;
    o.threads = ctx.threads;
    o.step = ctx.step_label;
    MB_ASSIGN(ConvertResult res, dequantize_model(ctx.fs, model->path, ctx.output_dir, o, ctx.reporter));
    ctx.report["dtype"] = dtype_name(res.dtype);
    return {};
  }
  QuantizeOptions o;
  o.bits = *p.bits;
  o.group_size = p.group_size;
  MB_ASSIGN(o.kernel, quantizer_from_param(p.quantizer));
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
