#include "tensors/hf_export.h"

#include <array>
#include <regex>

#include "tensors/fuse.h"
#include "tensors/model_dir.h"
#include "tensors/quantize_model.h"

namespace mb {
namespace {

constexpr std::array<std::string_view, 3> kArchitectures = {"qwen2", "llama", "qwen3"};

// transformers' parameter names of Qwen2ForCausalLM, LlamaForCausalLM and
// Qwen3ForCausalLM (docs/formats/hf-layout.md §2): the decoder blocks, the
// embedding, the final norm and an untied output head.
const std::regex& hf_name_pattern() {
  static const std::regex pattern(
      "model\\.embed_tokens\\.weight|model\\.norm\\.weight|lm_head\\.weight|"
      "model\\.layers\\.(0|[1-9][0-9]*)\\.("
      "self_attn\\.[qkvo]_proj\\.(weight|bias)|self_attn\\.[qk]_norm\\.weight|"
      "mlp\\.(gate|up|down)_proj\\.weight|(input|post_attention)_layernorm\\.weight)");
  return pattern;
}

}  // namespace

bool hf_architecture_supported(std::string_view model_type) {
  for (std::string_view a : kArchitectures)
    if (a == model_type) return true;
  return false;
}

std::optional<std::string> hf_tensor_name(std::string_view model_type, std::string_view mlx_name) {
  if (!hf_architecture_supported(model_type)) return std::nullopt;
  const std::string name(mlx_name);
  if (!std::regex_match(name, hf_name_pattern())) return std::nullopt;
  if (model_type != "qwen3" && name.find("_norm.") != std::string::npos && name.find("layernorm") == std::string::npos)
    return std::nullopt;  // q_norm / k_norm exist in Qwen3 only
  return name;
}

Result<HfExportStats> export_hf(FileSystem& fs, const fs::path& model_dir, const fs::path& out_dir,
                                const HfExportOptions& options, Reporter& reporter) {
  MB_ASSIGN(ModelDir model, ModelDir::open(fs, model_dir));
  const std::string config_path = (model_dir / "config.json").string();
  const std::string model_type = model.config().value("model_type", std::string());
  if (!hf_architecture_supported(model_type))
    return make_error(Errc::kUnsupported, config_path,
                      "model_type '{}' has no Hugging Face export (supported: qwen2, llama, qwen3)", model_type);
  for (const TensorRef& t : model.weights().tensors()) {
    const std::string& name = t.info->name;
    if (is_quant_companion(model, name)) continue;
    if (!hf_tensor_name(model_type, name))
      return make_error(Errc::kUnsupported, config_path, "tensor {} has no transformers name in a {} model", name,
                        model_type);
  }
  DequantizeOptions o;
  o.dtype = options.dtype;
  o.threads = options.threads;
  o.max_shard_bytes = options.max_shard_bytes;
  o.step = options.step;
  o.layout = DirLayout::kHuggingFace;
  MB_ASSIGN(ConvertResult res, dequantize_model(fs, model_dir, out_dir, o, reporter));
  HfExportStats stats;
  stats.dtype = res.dtype;
  stats.tensors = res.tensors;
  stats.bytes = res.bytes;
  MB_ASSIGN(std::vector<std::string> names, fs.list_dir(out_dir));
  for (const std::string& n : names) stats.shards += n.size() > 12 && n.ends_with(".safetensors");
  return stats;
}

}  // namespace mb
