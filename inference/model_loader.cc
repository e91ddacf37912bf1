// load_model(): a model directory -> Model.
//
// STOPGAP: reads safetensors through SafetensorsView and config.json's
// "quantization" itself until tensors/safetensors.h and tensors/model_dir.h
// exist; then this file only adapts those to TensorSource / QuantRule.

#include <nlohmann/json.hpp>

#include "inference/model.h"
#include "inference/safetensors_view.h"

namespace mb::inference {

namespace {

using nlohmann::json;

class ConfigQuantRule : public QuantRule {
 public:
  ConfigQuantRule(json q, std::string where) : m_q(std::move(q)), m_where(std::move(where)) {}
  Result<std::optional<QuantParams>> params_for(const std::string& module, bool has_scales) const override {
    if (!m_q.is_object()) return std::optional<QuantParams>();
    MB_ASSIGN(QuantParams top, parse(m_q, QuantParams{4, 64}));
    if (auto it = m_q.find(module); it != m_q.end()) {
      if (it->is_boolean()) return it->get<bool>() ? std::optional(top) : std::nullopt;
      MB_ASSIGN(QuantParams p, parse(*it, top));
      return std::optional(p);
    }
    return has_scales ? std::optional(top) : std::nullopt;
  }

 private:
  Result<QuantParams> parse(const json& j, QuantParams fallback) const {
    if (!j.is_object()) return Error{Errc::kInvalidInput, m_where, "malformed \"quantization\" entry"};
    QuantParams p = fallback;
    if (auto it = j.find("bits"); it != j.end() && !it->is_null()) {
      if (!it->is_number_integer()) return Error{Errc::kInvalidInput, m_where, "quantization \"bits\" must be an integer"};
      p.bits = it->get<int>();
    }
    if (auto it = j.find("group_size"); it != j.end() && !it->is_null()) {
      if (!it->is_number_integer())
        return Error{Errc::kInvalidInput, m_where, "quantization \"group_size\" must be an integer"};
      p.group_size = it->get<int>();
    }
    if (auto it = j.find("mode"); it != j.end() && it->is_string() && it->get<std::string>() != "affine")
      return Error{Errc::kUnsupported, m_where, fmt::format("unsupported quantization mode \"{}\"", it->get<std::string>())};
    return p;
  }
  json m_q;
  std::string m_where;
};

}  // namespace

Result<Model> load_model(const FileSystem& fs, const fs::path& model_dir) {
  const fs::path config_path = model_dir / "config.json";
  MB_ASSIGN(std::string text, fs.read_file(config_path));
  MB_ASSIGN(ModelConfig config, parse_model_config(text, config_path.string()));
  json j = json::parse(text, nullptr, false);
  json q;
  if (j.is_object()) {
    if (auto it = j.find("quantization"); it != j.end()) q = *it;
    else if (auto qc = j.find("quantization_config"); qc != j.end()) q = *qc;
  }
  if (q.is_object() && q.contains("quant_method"))
    return Error{Errc::kUnsupported, config_path.string(),
                 fmt::format("quantization method {} is not supported (only MLX affine)", q["quant_method"].dump())};
  ConfigQuantRule rule(q, config_path.string());

  auto tensors = std::make_shared<SafetensorsView>();
  MB_ASSIGN(auto names, fs.list_dir(model_dir));
  int shards = 0;
  for (const auto& n : names)
    if (n.size() > 12 && n.rfind("model", 0) == 0 && n.ends_with(".safetensors")) {
      MB_TRY(tensors->add_file(fs, model_dir / n));
      ++shards;
    }
  if (shards == 0) return Error{Errc::kNotFound, model_dir.string(), "no model*.safetensors files"};
  MB_ASSIGN(Model m, build_model(config, *tensors, rule));
  m.storage.push_back(tensors);
  return m;
}

}  // namespace mb::inference
