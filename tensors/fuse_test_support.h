#pragma once
// Test helpers for fuse/quantize/retention/inspect tests: synthetic model
// directories (float or MLX-quantized, one or several shards) and MLX/PEFT
// adapter directories written through any FileSystem, deterministic values,
// and read-back of any tensor as f32. Header-only; tests only.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/fs.h"
#include "tensors/adapters.h"
#include "tensors/dtype.h"
#include "tensors/fuse.h"
#include "tensors/mlx_quant.h"
#include "tensors/model_dir.h"
#include "tensors/safetensors_writer.h"

namespace mb::fuse_test {

// Deterministic values uniform in [-amplitude, amplitude] (a small LCG, so
// the data is the same on every platform).
inline std::vector<float> make_values(size_t n, uint32_t seed, float amplitude) {
  std::vector<float> v(n);
  uint64_t x = 0x9E3779B97F4A7C15ull ^ (uint64_t{seed} * 0xD1B54A32D192ED03ull);
  for (float& f : v) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const double u = static_cast<double>(x >> 11) / static_cast<double>(uint64_t{1} << 53);  // [0,1)
    f = static_cast<float>((2 * u - 1) * amplitude);
  }
  return v;
}

// RNE unit roundoff of a float dtype: |round(x) − x| ≤ unit·|x| (normal range).
inline double unit_roundoff(DType d) {
  switch (d) {
    case DType::kF16:
      return std::ldexp(1.0, -11);
    case DType::kBF16:
      return std::ldexp(1.0, -8);
    default:
      return std::ldexp(1.0, -24);
  }
}

inline std::string to_bytes(DType dtype, const std::vector<float>& values) {
  std::string out(values.size() * dtype_size(dtype), '\0');
  Status st = from_f32(values, dtype, std::span<std::byte>(reinterpret_cast<std::byte*>(out.data()), out.size()));
  EXPECT_TRUE(st.ok());
  return out;
}

struct FloatTensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::vector<float> values;  // rounded to dtype by the writer
};

inline int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// A model's tensors and how to store them.
struct ModelSpec {
  std::vector<FloatTensor> tensors;
  nlohmann::ordered_json config = nlohmann::ordered_json::object();
  // When set, every 2-D "*.weight" (not norms) is MLX-quantized with it,
  // scales in `scales_dtype`.
  std::optional<QuantParams> quant;
  DType scales_dtype = DType::kBF16;
  int shards = 1;
};

// A small Qwen2-shaped model: hidden 64, 2 layers, vocab 96, q/k/v biases,
// tied embeddings; float tensors in `dtype`.
inline ModelSpec tiny_qwen(DType dtype, uint32_t seed = 1, int64_t hidden = 64, int64_t inter = 128) {
  ModelSpec spec;
  const int64_t kv = hidden / 2, vocab = 96;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float amp) {
    spec.tensors.push_back({name, dtype, shape, make_values(static_cast<size_t>(numel(shape)), seed++, amp)});
  };
  add("model.embed_tokens.weight", {vocab, hidden}, 0.05f);
  add("model.norm.weight", {hidden}, 1.0f);
  for (int l = 0; l < 2; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {hidden}, 1.0f);
    add(p + "post_attention_layernorm.weight", {hidden}, 1.0f);
    add(p + "self_attn.q_proj.weight", {hidden, hidden}, 0.08f);
    add(p + "self_attn.q_proj.bias", {hidden}, 0.1f);
    add(p + "self_attn.k_proj.weight", {kv, hidden}, 0.08f);
    add(p + "self_attn.k_proj.bias", {kv}, 0.1f);
    add(p + "self_attn.v_proj.weight", {kv, hidden}, 0.08f);
    add(p + "self_attn.v_proj.bias", {kv}, 0.1f);
    add(p + "self_attn.o_proj.weight", {hidden, hidden}, 0.08f);
    add(p + "mlp.gate_proj.weight", {inter, hidden}, 0.08f);
    add(p + "mlp.up_proj.weight", {inter, hidden}, 0.08f);
    add(p + "mlp.down_proj.weight", {hidden, inter}, 0.08f);
  }
  spec.config = {{"model_type", "qwen2"},
                 {"hidden_size", hidden},
                 {"num_hidden_layers", 2},
                 {"tie_word_embeddings", true},
                 {"torch_dtype", *torch_dtype_name(dtype)}};
  return spec;
}

// tiny_qwen as a Llama (no biases, vocab 1024, 4 heads over 2 KV heads),
// whose q/k rows a GGUF export permutes; no torch_dtype in config.json.
inline ModelSpec tiny_llama(DType dtype) {
  ModelSpec spec = tiny_qwen(dtype);
  std::erase_if(spec.tensors, [](const FloatTensor& t) { return t.name.ends_with(".bias"); });
  spec.tensors[0] = {"model.embed_tokens.weight", dtype, {1024, 64}, make_values(1024 * 64, 9, 0.05f)};
  spec.config = {{"architectures", {"LlamaForCausalLM"}},
                 {"model_type", "llama"},
                 {"hidden_size", 64},
                 {"intermediate_size", 128},
                 {"num_hidden_layers", 2},
                 {"num_attention_heads", 4},
                 {"num_key_value_heads", 2},
                 {"max_position_embeddings", 256},
                 {"rms_norm_eps", 1e-5},
                 {"rope_theta", 500000.0},
                 {"vocab_size", 1024},
                 {"tie_word_embeddings", true}};
  return spec;
}

inline bool is_quantized_in(const ModelSpec& spec, const FloatTensor& t) {
  return spec.quant && t.shape.size() == 2 && t.name.size() > 7 &&
         t.name.compare(t.name.size() - 7, 7, ".weight") == 0 && t.name.find("norm") == std::string::npos &&
         t.shape[1] % spec.quant->group_size == 0;
}

// Writes config.json, tokenizer.json and the shards (with an index when
// there is more than one shard).
inline void write_model(FileSystem& fs, const fs::path& dir, const ModelSpec& spec) {
  ASSERT_TRUE(fs.create_dirs(dir).ok());
  std::vector<std::pair<TensorDecl, std::string>> all;
  for (const FloatTensor& t : spec.tensors) {
    if (!is_quantized_in(spec, t)) {
      all.push_back({{t.name, t.dtype, t.shape}, to_bytes(t.dtype, t.values)});
      continue;
    }
    // MLX casts to the scales' dtype before quantizing.
    const std::string src = to_bytes(spec.scales_dtype, t.values);
    auto q = quantize_tensor(t.name, spec.scales_dtype, t.shape, as_bytes(src), *spec.quant);
    ASSERT_TRUE(q.ok()) << q.error().to_string();
    const std::string m = t.name.substr(0, t.name.size() - 7);
    auto str = [](const std::vector<std::byte>& b) {
      return std::string(reinterpret_cast<const char*>(b.data()), b.size());
    };
    all.push_back({{t.name, DType::kU32, q->weight_shape}, str(q->weight)});
    all.push_back({{m + ".scales", q->dtype, q->scales_shape}, str(q->scales)});
    all.push_back({{m + ".biases", q->dtype, q->scales_shape}, str(q->biases)});
  }
  nlohmann::ordered_json config = spec.config;
  if (spec.quant) {
    QuantizationConfig qc = QuantizationConfig::uniform({spec.quant->bits, spec.quant->group_size, "affine"});
    set_quantization(config, &qc);
  }
  ASSERT_TRUE(write_file_atomic(fs, dir / "config.json", config.dump(2)).ok());
  ASSERT_TRUE(write_file_atomic(fs, dir / "tokenizer.json", std::string("{\"model\":{}}")).ok());
  const size_t per = (all.size() + static_cast<size_t>(spec.shards) - 1) / static_cast<size_t>(spec.shards);
  nlohmann::ordered_json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::ordered_json::object()}};
  for (int s = 0; s < spec.shards; ++s) {
    const std::string file =
        spec.shards == 1 ? "model.safetensors" : fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1, spec.shards);
    std::vector<TensorData> data;
    for (size_t i = static_cast<size_t>(s) * per; i < std::min(all.size(), (static_cast<size_t>(s) + 1) * per); ++i) {
      data.push_back({all[i].first, as_bytes(all[i].second)});
      index["weight_map"][all[i].first.name] = file;
    }
    ASSERT_TRUE(write_safetensors(fs, dir / file, data, {{"format", "mlx"}}).ok());
  }
  if (spec.shards > 1) {
    ASSERT_TRUE(write_file_atomic(fs, dir / kIndexFileName, index.dump(4)).ok());
  }
}

// A LoRA module with deterministic factors (normalized orientation).
inline LoraModule make_module(const std::string& module, int64_t out, int64_t in, int64_t rank, float scale,
                              uint32_t seed, float amp_a = 0.1f, float amp_b = 0.05f) {
  LoraModule m;
  m.module = module;
  m.out = out, m.in = in, m.rank = rank, m.scale = scale;
  m.a = make_values(static_cast<size_t>(rank * in), seed, amp_a);
  m.b = make_values(static_cast<size_t>(out * rank), seed + 1000, amp_b);
  return m;
}

inline std::vector<float> transposed(const std::vector<float>& v, int64_t rows, int64_t cols) {
  std::vector<float> t(v.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) t[static_cast<size_t>(c * rows + r)] = v[static_cast<size_t>(r * cols + c)];
  return t;
}

// adapters.safetensors (lora_a [in,r], lora_b [r,out], m) + config.
inline void write_mlx_adapter(FileSystem& fs, const fs::path& dir, const std::vector<LoraModule>& modules,
                              DType dtype = DType::kF32) {
  ASSERT_TRUE(fs.create_dirs(dir).ok());
  std::vector<std::pair<TensorDecl, std::string>> all;
  for (const LoraModule& m : modules) {
    all.push_back({{m.module + ".lora_a", dtype, {m.in, m.rank}}, to_bytes(dtype, transposed(m.a, m.rank, m.in))});
    all.push_back({{m.module + ".lora_b", dtype, {m.rank, m.out}}, to_bytes(dtype, transposed(m.b, m.out, m.rank))});
    if (m.is_dora()) all.push_back({{m.module + ".m", dtype, {m.out}}, to_bytes(dtype, m.magnitude)});
  }
  std::vector<TensorData> data;
  for (auto& [d, b] : all) data.push_back({d, as_bytes(b)});
  ASSERT_TRUE(write_safetensors(fs, dir / "adapters.safetensors", data, {}).ok());
  const bool dora = !modules.empty() && modules[0].is_dora();
  nlohmann::ordered_json config = {
      {"fine_tune_type", dora ? "dora" : "lora"},
      {"num_layers", 16},
      {"lora_parameters", {{"rank", modules.at(0).rank}, {"scale", modules.at(0).scale}, {"dropout", 0.0}}}};
  ASSERT_TRUE(write_file_atomic(fs, dir / "adapter_config.json", config.dump(4)).ok());
}

// adapter_model.safetensors (base_model.model.<m>.lora_A.weight [r,in], ...)
// + config with r and lora_alpha = scale·r.
inline void write_peft_adapter(FileSystem& fs, const fs::path& dir, const std::vector<LoraModule>& modules,
                               DType dtype = DType::kF32, nlohmann::ordered_json extra = {}) {
  ASSERT_TRUE(fs.create_dirs(dir).ok());
  std::vector<std::pair<TensorDecl, std::string>> all;
  for (const LoraModule& m : modules) {
    const std::string k = "base_model.model." + m.module;
    all.push_back({{k + ".lora_A.weight", dtype, {m.rank, m.in}}, to_bytes(dtype, m.a)});
    all.push_back({{k + ".lora_B.weight", dtype, {m.out, m.rank}}, to_bytes(dtype, m.b)});
    if (m.is_dora()) all.push_back({{k + ".lora_magnitude_vector", dtype, {m.out}}, to_bytes(dtype, m.magnitude)});
  }
  std::vector<TensorData> data;
  for (auto& [d, b] : all) data.push_back({d, as_bytes(b)});
  ASSERT_TRUE(write_safetensors(fs, dir / "adapter_model.safetensors", data, {{"format", "pt"}}).ok());
  const LoraModule& m0 = modules.at(0);
  nlohmann::ordered_json config = {{"peft_type", "LORA"},
                                   {"task_type", "CAUSAL_LM"},
                                   {"r", m0.rank},
                                   {"lora_alpha", static_cast<double>(m0.scale) * static_cast<double>(m0.rank)},
                                   {"use_dora", m0.is_dora()},
                                   {"target_modules", {"q_proj", "v_proj"}},
                                   {"bias", "none"}};
  for (auto& [k, v] : extra.items()) config[k] = v;
  ASSERT_TRUE(write_file_atomic(fs, dir / "adapter_config.json", config.dump(2)).ok());
}

// Any tensor of a model directory as f32 (quantized ones dequantized
// exactly), with its logical shape.
struct ReadBack {
  std::vector<int64_t> shape;
  std::vector<float> values;
  DType dtype = DType::kF32;
  bool quantized = false;
};
inline ReadBack read_tensor(const FileSystem& fs, const fs::path& dir, const std::string& name) {
  ReadBack out;
  auto model = ModelDir::open(fs, dir);
  EXPECT_TRUE(model.ok()) << model.error().to_string();
  if (!model.ok()) return out;
  auto rows = WeightRows::open(*model, name);
  EXPECT_TRUE(rows.ok()) << rows.error().to_string();
  if (!rows.ok()) return out;
  out.shape = rows->shape();
  out.dtype = rows->dtype();
  out.quantized = rows->quantized();
  out.values.resize(static_cast<size_t>(rows->rows() * rows->cols()));
  auto scratch = rows->make_scratch();
  for (int64_t r = 0; r < rows->rows(); ++r)
    rows->read_row(
        r,
        std::span<float>(out.values).subspan(static_cast<size_t>(r * rows->cols()), static_cast<size_t>(rows->cols())),
        scratch);
  return out;
}

// Every file of a directory, name → bytes.
inline std::map<std::string, std::string> dir_contents(const FileSystem& fs, const fs::path& dir) {
  std::map<std::string, std::string> out;
  auto names = fs.list_dir(dir);
  EXPECT_TRUE(names.ok());
  if (!names.ok()) return out;
  for (const std::string& n : *names) {
    auto c = fs.read_file(dir / n);
    EXPECT_TRUE(c.ok()) << n;
    if (c.ok()) out[n] = *c;
  }
  return out;
}

}  // namespace mb::fuse_test
