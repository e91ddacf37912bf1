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

Result<std::unique_ptr<TensorSource>> TensorSource::open_dir(const FileSystem& fs, const fs::path& dir) {
  MB_ASSIGN(ModelDir model, ModelDir::open(fs, dir));
  std::unique_ptr<TensorSource> s(new TensorSource());
  s->m_model = std::make_unique<ModelDir>(std::move(model));
  s->m_names = logical_tensor_names(*s->m_model);
  return s;
}

Result<std::unique_ptr<TensorSource>> TensorSource::open_model(const FileSystem& fs, const fs::path& dir) {
  MB_ASSIGN(std::unique_ptr<TensorSource> s, open_dir(fs, dir));
  s->m_config = s->m_model->config();
  s->m_dtype = default_dtype(*s->m_model);
  return s;
}

Result<std::unique_ptr<TensorSource>> TensorSource::open_fused(const FileSystem& fs, const fs::path& base_dir,
                                                               const std::vector<Adapter>& adapters,
                                                               std::optional<DType> dtype, Reporter& reporter) {
  MB_ASSIGN(std::unique_ptr<TensorSource> s, open_dir(fs, base_dir));
  const ModelDir& base = *s->m_model;
  MB_TRY(check_model_dtypes(base));
  FuseOptions options;  // dequantize mode, as fuse_model checks it
  options.dtype = dtype;
  MB_TRY(check_fuse_options(base, base_dir, options));
  MB_ASSIGN(s->m_adapted, fuse_adapted_modules(base, base_dir, adapters, reporter));
  // fuse_model stores every float tensor in `out`; an export of that model
  // rounds to its default_dtype(), which is `out` or (no torch_dtype, no
  // 2-D float weight) F32, a no-op on values already in `out`.
  const DType out = dtype.value_or(default_dtype(base));
  s->m_config = fused_config(base, out, options);
  s->m_dtype = out;
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
