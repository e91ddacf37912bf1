// load_gguf_model(): a GgufFile -> Model through the builder's TensorSource,
// with GGUF tensor names mapped to the engine's (docs/formats/gguf.md,
// "Tensor names") and, for llama, the q/k rows put back in Hugging Face
// order.
#include "inference/gguf_model.h"

#include <fmt/format.h>

#include <deque>
#include <map>

#include "tensors/gguf_names.h"

namespace mb::inference {

namespace {

std::optional<std::string> float_dtype(GgmlType t) {
  if (t == GgmlType::kF32) return "F32";
  if (t == GgmlType::kF16) return "F16";
  if (t == GgmlType::kBF16) return "BF16";
  return std::nullopt;
}

// Tensors of a GGUF file under the engine's names. Float tensors look like
// safetensors ones ("F32", "F16", "BF16"); block types carry `ggml`. GGUF
// files have no MLX quantization, so params_for is always "not quantized".
class GgufSource final : public TensorSource, public QuantRule {
 public:
  GgufSource(std::shared_ptr<const GgufFile> file, const ModelConfig& config)
      : m_file(std::move(file)), m_config(config) {}

  const TensorData* find(const std::string& name) const override {
    if (auto it = m_cache.find(name); it != m_cache.end()) return &it->second;
    const std::string g = gguf_name(name);
    const GgufTensorInfo* info = g.empty() ? nullptr : m_file->find(g);
    if (!info) return nullptr;
    TensorData t;
    t.dtype = float_dtype(info->type).value_or(ggml_type_name(info->type));
    if (!float_dtype(info->type)) t.ggml = info->type;
    for (auto d = info->dims.rbegin(); d != info->dims.rend(); ++d) t.shape.push_back(static_cast<int64_t>(*d));
    const std::span<const uint8_t> bytes = m_file->bytes(*info);
    t.bytes = std::as_bytes(bytes);
    if (const int heads = permuted_heads(g); heads > 0) t.bytes = unpermute(t, heads);
    return &m_cache.emplace(name, std::move(t)).first->second;
  }

  // GGUF name of an engine (Hugging Face) tensor name; "" when it has none.
  std::string gguf_name(const std::string& name) const {
    return gguf_tensor_name(architecture_name(m_config.arch), name).value_or("");
  }

  std::string location(const std::string& name) const override {
    const std::string g = gguf_name(name);
    return fmt::format("{}: {}", m_file->path().string(), g.empty() ? name : g);
  }

  Result<std::optional<QuantParams>> params_for(const std::string&, bool) const override {
    return std::optional<QuantParams>();
  }

 private:
  // llama's attn_q / attn_k (weight and bias) are stored with each head's
  // rows in llama.cpp's adjacent-pair rotary order; the head count, else 0.
  int permuted_heads(const std::string& g) const {
    if (m_config.arch != Architecture::kLlama) return 0;
    if (g.ends_with(".attn_q.weight") || g.ends_with(".attn_q.bias")) return m_config.num_heads;
    if (g.ends_with(".attn_k.weight") || g.ends_with(".attn_k.bias")) return m_config.num_kv_heads;
    return 0;
  }

  // A copy of `t` with rows back in Hugging Face order: within each head of
  // D rows, GGUF row 2i + j holds HF row j * D/2 + i (j = 0, 1). Rows are
  // whole blocks, so this works for every type. Shapes that do not divide
  // are left as they are for the builder's shape checks to report.
  std::span<const std::byte> unpermute(const TensorData& t, int heads) const {
    const int64_t rows = t.shape.empty() ? 0 : t.shape[0];
    const int64_t d = m_config.head_dim;
    if (rows != heads * d || t.bytes.size() % rows != 0) return t.bytes;
    const size_t rb = t.bytes.size() / rows;
    std::vector<std::byte>& out = m_copies.emplace_back(t.bytes.size());
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < d / 2; ++i)
        for (int64_t j = 0; j < 2; ++j) {
          const int64_t hf = h * d + j * (d / 2) + i, gg = h * d + gguf_rope_target_row(j * (d / 2) + i, d);
          std::memcpy(out.data() + hf * rb, t.bytes.data() + gg * rb, rb);
        }
    return out;
  }

  std::shared_ptr<const GgufFile> m_file;
  ModelConfig m_config;
  // The builder runs on one thread; entries are never erased, so pointers stay valid.
  mutable std::map<std::string, TensorData> m_cache;
  mutable std::deque<std::vector<std::byte>> m_copies;
};

}  // namespace

Result<Model> load_gguf_model(std::shared_ptr<const GgufFile> file) {
  MB_ASSIGN(ModelConfig config, gguf_model_config(*file));
  auto source = std::make_shared<GgufSource>(file, config);
  MB_ASSIGN(Model m, build_model(config, *source, *source));
  m.storage.push_back(source);
  return m;
}

}  // namespace mb::inference
