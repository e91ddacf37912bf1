#include "inference/model.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace mb::inference {

std::vector<Linear*> Model::linears() {
  std::vector<Linear*> out;
  for (Layer& l : layers)
    for (Linear* p : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) out.push_back(p);
  return out;
}

namespace {

std::string shape_str(const std::vector<int64_t>& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

std::optional<FloatType> float_type(const std::string& dtype) {
  if (dtype == "F32") return FloatType::kF32;
  if (dtype == "F16") return FloatType::kF16;
  if (dtype == "BF16") return FloatType::kBF16;
  return std::nullopt;
}

class Builder {
 public:
  Builder(const TensorSource& src, const QuantRule& quant, Model& model) : m_src(src), m_quant(quant), m_model(model) {}

  Result<const TensorData*> tensor(const std::string& name) {
    const TensorData* t = m_src.find(name);
    if (!t) return Error{Errc::kNotFound, name, "missing tensor"};
    return t;
  }

  Error bad(const std::string& name, const std::string& msg) {
    return Error{Errc::kCorrupt, fmt::format("{}: {}", m_src.location(name), name), msg};
  }

  // A [rows, cols] weight `<module>.weight`: float, or MLX affine-quantized.
  Result<WeightMatrix> matrix(const std::string& module, int64_t rows, int64_t cols) {
    const std::string name = module + ".weight";
    MB_ASSIGN(const TensorData* t, tensor(name));
    const TensorData* scales = m_src.find(module + ".scales");
    MB_ASSIGN(std::optional<QuantParams> q, m_quant.params_for(module, scales != nullptr));
    WeightMatrix w;
    w.rows = rows;
    w.cols = cols;
    w.data = t->bytes.data();
    if (t->ggml) {
      if (q && scales) return bad(name, "ggml block weight has MLX scales");
      if (t->shape != std::vector<int64_t>{rows, cols})
        return bad(name, fmt::format("shape {} does not match [{}, {}]", shape_str(t->shape), rows, cols));
      if (!ggml_type_implemented(*t->ggml) || !ggml_row_fits(*t->ggml, cols))
        return bad(name, fmt::format("rows of {} values do not fit {} blocks", cols, ggml_type_name(*t->ggml)));
      w.format = WeightFormat::kGgml;
      w.ggml = *t->ggml;
      count(t, rows * cols);
    } else if (t->dtype == "U32") {
      if (!q) return bad(name, "packed (U32) weight but config.json does not quantize this module");
      if (!scales) return bad(module + ".scales", "missing scales of a quantized weight");
      const TensorData* biases = m_src.find(module + ".biases");
      if (!biases)
        return bad(module + ".biases", "missing biases of a quantized weight (only affine mode is supported)");
      const int bits = q->bits, gs = q->group_size;
      if (bits < 2 || bits > 8 || bits == 7)
        return Error{Errc::kUnsupported, name, fmt::format("unsupported quantization bits {}", bits)};
      if (gs != 32 && gs != 64 && gs != 128)
        return Error{Errc::kUnsupported, name, fmt::format("unsupported quantization group size {}", gs)};
      if (cols % gs != 0) return bad(name, fmt::format("input size {} is not a multiple of group size {}", cols, gs));
      const std::vector<int64_t> want_w = {rows, cols * bits / 32}, want_s = {rows, cols / gs};
      if (t->shape != want_w)
        return bad(name, fmt::format("shape {} does not match {}-bit [{}, {}] (expected {})", shape_str(t->shape), bits,
                                     rows, cols, shape_str(want_w)));
      auto ft = float_type(scales->dtype);
      if (!ft) return bad(module + ".scales", fmt::format("unsupported scales dtype {}", scales->dtype));
      if (scales->shape != want_s || biases->shape != want_s || biases->dtype != scales->dtype)
        return bad(module + ".scales", fmt::format("scales {} / biases {} {} do not match group size {} (expected {})",
                                                   shape_str(scales->shape), biases->dtype, shape_str(biases->shape),
                                                   gs, shape_str(want_s)));
      w.format = WeightFormat::kAffine;
      w.dtype = *ft;
      w.bits = bits;
      w.group_size = gs;
      w.scales = scales->bytes.data();
      w.biases = biases->bytes.data();
      count(t, rows * cols);
      count(scales, 0);
      count(biases, 0);
    } else {
      auto ft = float_type(t->dtype);
      if (!ft) return Error{Errc::kUnsupported, name, fmt::format("unsupported weight dtype {}", t->dtype)};
      if (q && scales) return bad(name, "float weight has scales; expected packed U32 codes");
      if (t->shape != std::vector<int64_t>{rows, cols})
        return bad(name, fmt::format("shape {} does not match [{}, {}]", shape_str(t->shape), rows, cols));
      w.format = WeightFormat::kFloat;
      w.dtype = *ft;
      count(t, rows * cols);
    }
    if (t->bytes.size() < w.row_bytes() * rows) return bad(name, "data shorter than its shape");
    m_formats[w.describe()] += rows * cols;
    return w;
  }

  // A float vector of `n` values, converted to f32.
  Result<std::vector<float>> vec(const std::string& name, int64_t n) {
    MB_ASSIGN(const TensorData* t, tensor(name));
    auto ft = float_type(t->dtype);
    if (!ft) return Error{Errc::kUnsupported, name, fmt::format("unsupported dtype {}", t->dtype)};
    if (t->shape != std::vector<int64_t>{n})
      return bad(name, fmt::format("shape {} does not match [{}]", shape_str(t->shape), n));
    if (t->bytes.size() < n * float_type_size(*ft)) return bad(name, "data shorter than its shape");
    std::vector<float> v(n);
    for (int64_t i = 0; i < n; ++i) v[i] = load_float(t->bytes.data(), *ft, i);
    count(t, n);
    return v;
  }

  Result<Linear> linear(const std::string& module, int64_t out, int64_t in, bool has_bias) {
    Linear l;
    l.name = module;
    MB_ASSIGN(l.weight, matrix(module, out, in));
    if (has_bias) {
      MB_ASSIGN(l.bias, vec(module + ".bias", out));
    }
    return l;
  }

  std::string format_summary() const {
    // Formats by share of parameters, largest first: "q4 gs64 + q8 gs64".
    std::vector<std::pair<int64_t, std::string>> v;
    for (const auto& [k, n] : m_formats) v.emplace_back(-n, k);
    std::sort(v.begin(), v.end());
    std::string s;
    for (const auto& [n, k] : v) s += (s.empty() ? "" : " + ") + k;
    return s;
  }

 private:
  void count(const TensorData* t, int64_t params) {
    m_model.parameters += params;
    m_model.weight_bytes += t->bytes.size();
  }

  const TensorSource& m_src;
  const QuantRule& m_quant;
  Model& m_model;
  std::map<std::string, int64_t> m_formats;
};

}  // namespace

Result<Model> build_model(const ModelConfig& c, const TensorSource& source, const QuantRule& quant) {
  Model m;
  m.config = c;
  Builder b(source, quant, m);
  const int64_t h = c.hidden_size, hd = c.head_dim, inter = c.intermediate_size;
  const int64_t nq = static_cast<int64_t>(c.num_heads) * hd, nkv = static_cast<int64_t>(c.num_kv_heads) * hd;
  MB_ASSIGN(m.embed, b.matrix("model.embed_tokens", c.vocab_size, h));
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    Layer L;
    MB_ASSIGN(L.input_norm, b.vec(p + "input_layernorm.weight", h));
    MB_ASSIGN(L.post_norm, b.vec(p + "post_attention_layernorm.weight", h));
    MB_ASSIGN(L.q, b.linear(p + "self_attn.q_proj", nq, h, c.qkv_bias));
    MB_ASSIGN(L.k, b.linear(p + "self_attn.k_proj", nkv, h, c.qkv_bias));
    MB_ASSIGN(L.v, b.linear(p + "self_attn.v_proj", nkv, h, c.qkv_bias));
    MB_ASSIGN(L.o, b.linear(p + "self_attn.o_proj", h, nq, c.o_bias));
    if (c.qk_norm) {
      MB_ASSIGN(L.q_norm, b.vec(p + "self_attn.q_norm.weight", hd));
      MB_ASSIGN(L.k_norm, b.vec(p + "self_attn.k_norm.weight", hd));
    }
    MB_ASSIGN(L.gate, b.linear(p + "mlp.gate_proj", inter, h, c.mlp_bias));
    MB_ASSIGN(L.up, b.linear(p + "mlp.up_proj", inter, h, c.mlp_bias));
    MB_ASSIGN(L.down, b.linear(p + "mlp.down_proj", h, inter, c.mlp_bias));
    m.layers.push_back(std::move(L));
  }
  MB_ASSIGN(m.final_norm, b.vec("model.norm.weight", h));
  m.lm_head.name = "lm_head";
  if (c.tie_word_embeddings) {
    m.lm_head.weight = m.embed;
  } else {
    if (!source.find("lm_head.weight"))
      return Error{Errc::kNotFound, "lm_head.weight", "missing tensor (config.json has tie_word_embeddings false)"};
    MB_ASSIGN(m.lm_head.weight, b.matrix("lm_head", c.vocab_size, h));
  }
  m.weight_format = b.format_summary();
  return m;
}

}  // namespace mb::inference
