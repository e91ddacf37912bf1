#include "tensors/diff_source.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "tensors/ggml_quants.h"
#include "tensors/gguf_names.h"

namespace mb {

DiffTensor::Scratch DiffTensor::make_scratch() const {
  Scratch s;
  if (m_mlx) s.weights = m_mlx->make_scratch();
  // A 1-D permuted bias is read whole, then put back in Hugging Face order.
  if (m_gguf && m_head_dim > 0 && m_shape.size() == 1) s.row.resize(static_cast<size_t>(m_cols));
  return s;
}

void DiffTensor::read_row(int64_t row, std::span<float> out, Scratch& scratch) const {
  if (m_mlx) return m_mlx->read_row(row, out, scratch.weights);
  const uint8_t* blocks = reinterpret_cast<const uint8_t*>(m_bytes.data());
  if (m_head_dim == 0)
    return dequantize_rows(m_gguf->type, blocks + static_cast<size_t>(row) * m_row_bytes, 1, m_cols, out.data());
  if (m_shape.size() > 1) {
    const int64_t stored = gguf_rope_target_row(row, m_head_dim);
    return dequantize_rows(m_gguf->type, blocks + static_cast<size_t>(stored) * m_row_bytes, 1, m_cols, out.data());
  }
  dequantize_rows(m_gguf->type, blocks, 1, m_cols, scratch.row.data());
  for (int64_t i = 0; i < m_cols; ++i) out[static_cast<size_t>(i)] = scratch.row[gguf_rope_target_row(i, m_head_dim)];
}

Result<DiffSource> DiffSource::open(const FileSystem& fs, const fs::path& path) {
  DiffSource s;
  MB_ASSIGN(std::optional<fs::path> gguf, find_gguf_model(fs, path));
  if (!gguf) {
    MB_ASSIGN(ModelDir dir, ModelDir::open(fs, path));
    s.m_dir = std::make_shared<const ModelDir>(std::move(dir));
    s.m_names = logical_tensor_names(*s.m_dir);
    std::sort(s.m_names.begin(), s.m_names.end());
    return s;
  }
  MB_ASSIGN(GgufFile file, GgufFile::open(fs, *gguf));
  s.m_gguf = std::make_shared<const GgufFile>(std::move(file));
  MB_ASSIGN(s.m_arch, gguf_architecture(*s.m_gguf));
  // Head counts matter only where rows are permuted; other files need not
  // carry them.
  if (s.m_arch == "llama") {
    MB_ASSIGN(s.m_heads, gguf_head_counts(*s.m_gguf, s.m_arch));
  }
  for (const GgufTensorInfo& t : s.m_gguf->tensors())
    s.m_gguf_names.emplace_back(gguf_source_name(s.m_arch, t.name).value_or(t.name), &t);
  std::sort(s.m_gguf_names.begin(), s.m_gguf_names.end());
  for (size_t i = 1; i < s.m_gguf_names.size(); ++i)
    if (s.m_gguf_names[i].first == s.m_gguf_names[i - 1].first)
      return make_error(Errc::kInvalidInput, gguf->string(), "tensors {} and {} both stand for {}",
                        s.m_gguf_names[i - 1].second->name, s.m_gguf_names[i].second->name, s.m_gguf_names[i].first);
  for (const auto& entry : s.m_gguf_names) s.m_names.push_back(entry.first);
  return s;
}

Result<DiffTensor> DiffSource::tensor(const std::string& name) const {
  return m_gguf ? gguf_tensor(name) : dir_tensor(name);
}

Result<DiffTensor> DiffSource::dir_tensor(const std::string& name) const {
  DiffTensor t;
  auto rows = WeightRows::open(*m_dir, name);
  if (!rows.ok() && rows.error().code != Errc::kUnsupported) return rows.error();
  if (!rows.ok()) {  // a non-float tensor: compared byte for byte
    const TensorRef ref = m_dir->weights().find(name);
    t.m_shape = ref.info->shape;
    t.m_stored = dtype_name(ref.info->dtype);
    t.m_bytes = ref.bytes;
    return t;
  }
  t.m_shape = rows->shape();
  t.m_rows = rows->rows();
  t.m_cols = rows->cols();
  t.m_stored = rows->quantized() ? fmt::format("{}-bit gs{}", rows->quant()->bits, rows->quant()->group_size)
                                 : dtype_name(rows->dtype());
  t.m_mlx = std::move(rows).value();
  return t;
}

Result<DiffTensor> DiffSource::gguf_tensor(const std::string& name) const {
  const auto it = std::lower_bound(m_gguf_names.begin(), m_gguf_names.end(), name,
                                   [](const auto& entry, const std::string& n) { return entry.first < n; });
  const GgufTensorInfo& info = *it->second;
  DiffTensor t;
  for (auto d = info.dims.rbegin(); d != info.dims.rend(); ++d) t.m_shape.push_back(static_cast<int64_t>(*d));
  t.m_cols = static_cast<int64_t>(info.row_length());
  t.m_rows = static_cast<int64_t>(info.rows());
  // Float types as safetensors spells them ("F16"), so that an F16 export
  // and its float16 source read as stored alike; block types as ggml does.
  t.m_stored = ggml_type_name(info.type);
  if (ggml_block_size(info.type) == 1)
    for (char& c : t.m_stored) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  t.m_bytes = std::as_bytes(m_gguf->bytes(info));
  t.m_gguf = &info;
  t.m_row_bytes = ggml_row_size(info.type, t.m_cols);
  if (auto heads = gguf_permuted_heads(m_arch, name, m_heads.first, m_heads.second)) {
    // A weight permutes rows, a 1-D bias its elements; a head count that
    // does not divide them is a file llama.cpp would refuse too.
    const int64_t n = t.m_shape.size() > 1 ? t.m_rows : t.m_cols;
    if (n % *heads != 0 || (n / *heads) % 2 != 0)
      return make_error(Errc::kCorrupt, m_gguf->path().string(),
                        "tensor {}: {} rows do not split into {} heads of an even size", info.name, n, *heads);
    t.m_head_dim = n / *heads;
  }
  return t;
}

}  // namespace mb
