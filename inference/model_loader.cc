// load_model(): a model directory -> Model, through tensors/model_dir.h
// (config.json, the mmapped shards, mlx_lm's quantization rule) adapted to
// the builder's TensorSource / QuantRule.
#include <map>

#include "inference/model.h"
#include "tensors/model_dir.h"

namespace mb::inference {

namespace {

class ModelDirSource final : public TensorSource, public QuantRule {
 public:
  explicit ModelDirSource(ModelDir dir) : m_dir(std::move(dir)) {
    const ModelWeights& w = m_dir.weights();
    for (const TensorRef& t : w.tensors())
      m_tensors.emplace(t.info->name, TensorData{dtype_name(t.info->dtype), t.info->shape, t.bytes, std::nullopt});
  }

  const TensorData* find(const std::string& name) const override {
    auto it = m_tensors.find(name);
    return it == m_tensors.end() ? nullptr : &it->second;
  }
  std::string location(const std::string& name) const override {
    const ModelWeights& w = m_dir.weights();
    const int shard = w.shard_of(name);
    return shard < 0 ? m_dir.dir().string() : w.shards()[shard]->where();
  }

  Result<std::optional<QuantParams>> params_for(const std::string& module, bool has_scales) const override {
    const std::optional<LayerQuant> q = m_dir.quantization().for_module(module, has_scales);
    if (!q) return std::optional<QuantParams>();
    if (q->mode != "affine")
      return Error{Errc::kUnsupported, module,
                   fmt::format("quantization mode \"{}\" is not supported (affine only)", q->mode)};
    return std::optional<QuantParams>(QuantParams{q->bits, q->group_size});
  }

 private:
  ModelDir m_dir;
  std::map<std::string, TensorData> m_tensors;
};

}  // namespace

Result<Model> load_model(const FileSystem& fs, const fs::path& model_dir) {
  // The architecture first: an unsupported model fails before any shard is mapped.
  const fs::path config_path = model_dir / "config.json";
  MB_ASSIGN(std::string text, fs.read_file(config_path));
  MB_ASSIGN(ModelConfig config, parse_model_config(text, config_path.string()));
  MB_ASSIGN(ModelDir dir, ModelDir::open(fs, model_dir));
  auto source = std::make_shared<ModelDirSource>(std::move(dir));
  MB_ASSIGN(Model m, build_model(config, *source, *source));
  m.storage.push_back(source);
  return m;
}

}  // namespace mb::inference
