#include "tensors/tensor_source.h"

namespace mb {

SourceRows::Scratch SourceRows::make_scratch() const {
  Scratch s;
  s.weights = m_rows.make_scratch();
  if (!m_modules.empty()) {
    s.base.resize(static_cast<size_t>(cols()));
    s.delta.resize(static_cast<size_t>(cols()));
  }
  return s;
}

void SourceRows::read_row(int64_t row, std::span<float> out, Scratch& scratch) const {
  if (m_modules.empty()) {
    m_rows.read_row(row, out, scratch.weights);
  } else {
    m_rows.read_row(row, scratch.base, scratch.weights);
    fuse_row(m_modules, row, scratch.base, out, scratch.delta);
  }
  // fuse_model stores W* rounded (RNE) to its dtype; a reader of that
  // model sees exactly these values.
  round_to_dtype(out, m_dtype);
}

namespace {

std::vector<std::string> tensor_names(const ModelDir& model) {
  std::vector<std::string> names;
  for (const TensorRef& t : model.weights().tensors())
    if (!is_quant_companion(model, t.info->name)) names.push_back(t.info->name);
  return names;
}

}  // namespace

Result<std::unique_ptr<TensorSource>> TensorSource::open_model(const FileSystem& fs, const fs::path& dir) {
  MB_ASSIGN(ModelDir model, ModelDir::open(fs, dir));
  std::unique_ptr<TensorSource> s(new TensorSource());
  s->m_model = std::make_unique<ModelDir>(std::move(model));
  s->m_config = s->m_model->config();
  s->m_dtype = default_dtype(*s->m_model);
  s->m_names = tensor_names(*s->m_model);
  return s;
}

Result<std::unique_ptr<TensorSource>> TensorSource::open_fused(const FileSystem& fs, const fs::path& base_dir,
                                                               const std::vector<Adapter>& adapters,
                                                               std::optional<DType> dtype, Reporter& reporter) {
  MB_ASSIGN(ModelDir model, ModelDir::open(fs, base_dir));
  std::unique_ptr<TensorSource> s(new TensorSource());
  s->m_model = std::make_unique<ModelDir>(std::move(model));
  const ModelDir& base = *s->m_model;
  MB_TRY(check_model_dtypes(base));
  const DType out = dtype.value_or(default_dtype(base));
  if (!torch_dtype_name(out))
    return make_error(Errc::kInvalidInput, "", "fusion output dtype must be float16, bfloat16 or float32, not {}",
                      dtype_name(out));
  MB_ASSIGN(s->m_adapted, fuse_adapted_modules(base, base_dir, adapters, reporter));
  FuseOptions options;
  options.dtype = out;
  s->m_config = fused_config(base, out, options);
  // fuse_model stores every float tensor in `out`; an export of that model
  // rounds to its default_dtype(), which is `out` or (no torch_dtype, no
  // 2-D float weight) F32, a no-op on values already in `out`.
  s->m_dtype = out;
  s->m_names = tensor_names(base);
  return s;
}

Result<SourceRows> TensorSource::open(const std::string& name) const {
  MB_ASSIGN(WeightRows rows, WeightRows::open(*m_model, name));
  const auto it = m_adapted.find(name);
  std::vector<const LoraModule*> modules;
  if (it != m_adapted.end()) modules = it->second;
  return SourceRows(std::move(rows), std::move(modules), m_dtype);
}

}  // namespace mb
