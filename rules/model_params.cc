#include "rules/model_params.h"

#include "graph/params.h"
#include "tensors/gguf_type_choice.h"

namespace mb {

Result<std::optional<DType>> dtype_from_param(const std::string& name) {
  if (name == "auto") return std::optional<DType>();
  if (name == "float16") return std::optional<DType>(DType::kF16);
  if (name == "bfloat16") return std::optional<DType>(DType::kBF16);
  if (name == "float32") return std::optional<DType>(DType::kF32);
  return make_error(Errc::kInternal, "", "unknown dtype '{}'", name);
}

Result<QuantKernel> quantizer_from_param(const std::string& name) {
  if (name == "gpu") return QuantKernel::kGpu;
  if (name == "cpu") return QuantKernel::kCpu;
  return make_error(Errc::kInternal, "", "unknown quantizer '{}'", name);
}

nlohmann::json FuseParams::to_json() const {
  if (inplace) return {{"mode", "inplace"}, {"quantizer", quantizer}};
  nlohmann::json j = {{"mode", "dequantize"}, {"dtype", dtype}};
  if (bits) {
    j["bits"] = *bits;
    j["group_size"] = group_size;
    j["quantizer"] = quantizer;
  }
  return j;
}

Result<FuseParams> FuseParams::parse(const nlohmann::json& params) {
  FuseParams p;
  ParamReader r(params);
  std::string mode;
  r.required("mode", mode);
  p.inplace = mode == "inplace";
  if (p.inplace) {
    r.required("quantizer", p.quantizer);
  } else {
    r.required("dtype", p.dtype);
    r.optional("bits", p.bits);
    if (p.bits) {
      r.required("group_size", p.group_size);
      r.required("quantizer", p.quantizer);
    }
  }
  MB_TRY(r.finish());
  if (mode != "inplace" && mode != "dequantize") return make_error(Errc::kInternal, "", "unknown fuse mode '{}'", mode);
  MB_TRY(dtype_from_param(p.dtype).status());
  MB_TRY(quantizer_from_param(p.quantizer).status());
  return p;
}

nlohmann::json QuantizeParams::to_json() const {
  return {{"bits", bits ? nlohmann::json(*bits) : nlohmann::json(nullptr)},
          {"group_size", group_size},
          {"quantizer", quantizer},
          {"dtype", dtype}};
}

Result<QuantizeParams> QuantizeParams::parse(const nlohmann::json& params) {
  QuantizeParams p;
  ParamReader r(params);
  r.optional("bits", p.bits);
  r.required("group_size", p.group_size);
  r.required("quantizer", p.quantizer);
  r.required("dtype", p.dtype);
  MB_TRY(r.finish());
  MB_TRY(dtype_from_param(p.dtype).status());
  MB_TRY(quantizer_from_param(p.quantizer).status());
  return p;
}

nlohmann::json ExportParams::to_json() const {
  if (format != "gguf") return {{"format", format}};
  nlohmann::json j = {{"format", format}, {"gguf_type", gguf_type}};
  if (fuse_dtype) j["fuse_dtype"] = *fuse_dtype;
  return j;
}

Result<ExportParams> ExportParams::parse(const nlohmann::json& params) {
  ExportParams p;
  ParamReader r(params);
  r.required("format", p.format);
  if (p.format == "gguf") {
    r.required("gguf_type", p.gguf_type);
    r.optional("fuse_dtype", p.fuse_dtype);
  }
  MB_TRY(r.finish());
  if (p.fuse_dtype) MB_TRY(dtype_from_param(*p.fuse_dtype).status());
  if (p.format != "gguf" && p.format != "hf")
    return make_error(Errc::kInternal, "", "unknown export format '{}'", p.format);
  if (p.format == "gguf" && !gguf_file_type_from_name(p.gguf_type))
    return make_error(Errc::kInternal, "", "unknown GGUF type '{}'", p.gguf_type);
  return p;
}

}  // namespace mb
