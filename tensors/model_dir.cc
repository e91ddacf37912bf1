#include "tensors/model_dir.h"

#include <algorithm>
#include <set>

namespace mb {

namespace {

using ojson = nlohmann::ordered_json;

bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// Python truthiness, which mlx_lm's `if x := d.get(...)` tests rely on.
bool truthy(const ojson& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number_integer() || v.is_number_unsigned()) return v.get<int64_t>() != 0;
  if (v.is_number_float()) return v.get<double>() != 0.0;
  if (v.is_string() || v.is_array() || v.is_object()) return !v.empty();
  return true;
}

// MLX's per-mode defaults (nn.quantize's _defaults_for_mode): what a null,
// zero or missing group_size / bits falls back to.
LayerQuant mode_defaults(const std::string& mode) {
  if (mode == "mxfp4") return {4, 32, mode};
  if (mode == "nvfp4") return {4, 16, mode};
  if (mode == "mxfp8") return {8, 32, mode};
  return {kDefaultBits, kDefaultGroupSize, mode};
}

// Reads {group_size, bits, mode} with MLX's fallbacks. `what` names the
// object in errors.
Result<LayerQuant> parse_params(const ojson& obj, std::string_view where, const std::string& what) {
  std::string mode = "affine";
  if (auto m = obj.find("mode"); m != obj.end() && !m->is_null()) {
    if (!m->is_string())
      return make_error(Errc::kInvalidInput, std::string(where), "{}: \"mode\" is not a string", what);
    mode = m->get<std::string>();
  }
  LayerQuant q = mode_defaults(mode);
  auto read_int = [&](const char* key, int* out) -> Status {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return {};
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 4096)
      return make_error(Errc::kInvalidInput, std::string(where), "{}: \"{}\" is not a small non-negative integer", what,
                        key);
    if (int v = static_cast<int>(it->get<int64_t>()); v != 0) *out = v;
    return {};
  };
  MB_TRY(read_int("group_size", &q.group_size));
  MB_TRY(read_int("bits", &q.bits));
  return q;
}

ojson params_json(const LayerQuant& q) {
  ojson o = ojson::object();
  o["group_size"] = q.group_size;
  o["bits"] = q.bits;
  o["mode"] = q.mode;
  return o;
}

}  // namespace

Result<QuantizationConfig> QuantizationConfig::from_config(const ojson& config, std::string_view where) {
  QuantizationConfig out;
  if (!config.is_object()) return make_error(Errc::kInvalidInput, std::string(where), "config is not a JSON object");
  const ojson* q = nullptr;
  if (auto it = config.find("quantization"); it != config.end() && !it->is_null()) {
    q = &*it;
  } else if (auto qc = config.find("quantization_config"); qc != config.end() && !qc->is_null()) {
    if (qc->is_object() && qc->contains("quant_method"))
      return make_error(Errc::kUnsupported, std::string(where), "quantization_config.quant_method {} is not MLX affine",
                        (*qc)["quant_method"].dump());
    q = &*qc;
  }
  if (!q) return out;
  if (!q->is_object()) return make_error(Errc::kInvalidInput, std::string(where), "\"quantization\" is not an object");

  out.m_present = true;
  MB_ASSIGN(out.m_defaults, parse_params(*q, where, "quantization"));
  for (auto it = q->begin(); it != q->end(); ++it) {
    const std::string& key = it.key();
    if (key == "group_size" || key == "bits" || key == "mode") continue;
    if (it->is_boolean()) {
      out.m_overrides[key] = it->get<bool>() ? std::optional<LayerQuant>(out.m_defaults) : std::nullopt;
    } else if (it->is_object()) {
      // nn.quantize tests the predicate's result for truth: {} is falsy.
      if (it->empty()) {
        out.m_overrides[key] = std::nullopt;
        continue;
      }
      MB_ASSIGN(LayerQuant lq, parse_params(*it, where, "quantization." + key));
      out.m_overrides[key] = lq;
    } else {
      return make_error(Errc::kInvalidInput, std::string(where),
                        "quantization entry '{}' must be an object, true or false", key);
    }
  }
  return out;
}

QuantizationConfig QuantizationConfig::uniform(const LayerQuant& params) {
  QuantizationConfig q;
  q.m_present = true;
  q.m_defaults = params;
  return q;
}

void QuantizationConfig::set_override(const std::string& module_path, std::optional<LayerQuant> params) {
  m_overrides[module_path] = std::move(params);
}

std::optional<LayerQuant> QuantizationConfig::for_module(std::string_view module_path, bool has_scales) const {
  if (!m_present) return std::nullopt;
  if (auto it = m_overrides.find(std::string(module_path)); it != m_overrides.end()) return it->second;
  if (has_scales) return m_defaults;
  return std::nullopt;
}

ojson QuantizationConfig::to_json() const {
  ojson o = params_json(m_defaults);
  for (const auto& [path, q] : m_overrides) o[path] = q ? params_json(*q) : ojson(false);
  return o;
}

void set_quantization(ojson& config, const QuantizationConfig* q) {
  if (q && q->present()) {
    config["quantization"] = q->to_json();
    config["quantization_config"] = q->to_json();
  } else {
    config.erase("quantization");
    config.erase("quantization_config");
  }
}

std::string_view module_of(std::string_view tensor_name) {
  size_t dot = tensor_name.rfind('.');
  return dot == std::string_view::npos ? tensor_name : tensor_name.substr(0, dot);
}

Result<ModelDir> ModelDir::open(const FileSystem& fs, const fs::path& dir) {
  ModelDir md;
  md.m_dir = dir;
  fs::path config_path = dir / "config.json";
  MB_ASSIGN(std::string text, fs.read_file(config_path));
  md.m_config = ojson::parse(text, nullptr, /*allow_exceptions=*/false);
  if (md.m_config.is_discarded() || !md.m_config.is_object())
    return make_error(Errc::kInvalidInput, config_path.string(), "not a JSON object");

  // mlx_lm's load_config: generation_config.json's eos_token_id wins when
  // truthy; an unreadable or invalid generation_config is ignored.
  if (auto gen = fs.read_file(dir / "generation_config.json"); gen.ok()) {
    ojson g = ojson::parse(*gen, nullptr, false);
    if (!g.is_discarded() && g.is_object())
      if (auto eos = g.find("eos_token_id"); eos != g.end() && truthy(*eos)) md.m_config["eos_token_id"] = *eos;
  }

  MB_ASSIGN(md.m_quant, QuantizationConfig::from_config(md.m_config, config_path.string()));
  MB_ASSIGN(md.m_weights, ModelWeights::open(fs, dir));
  return md;
}

std::optional<LayerQuant> ModelDir::module_quant(std::string_view module_path) const {
  return m_quant.for_module(module_path, m_weights.contains(std::string(module_path) + ".scales"));
}

Result<ShardPlan> plan_shards(const std::vector<TensorDecl>& tensors, uint64_t max_shard_bytes,
                              const QuantizationConfig& quant) {
  ShardPlan plan;
  std::set<std::string_view> names;
  std::vector<uint64_t> sizes;
  for (const TensorDecl& t : tensors) {
    if (!names.insert(t.name).second) return make_error(Errc::kInvalidInput, t.name, "tensor declared twice");
    auto n = tensor_nbytes(t.dtype, t.shape, "", t.name);
    if (!n.ok()) return Error{Errc::kInvalidInput, t.name, n.error().message};
    sizes.push_back(*n);
  }

  std::vector<ShardPlan::Shard> shards(1);
  for (size_t i = 0; i < tensors.size(); ++i) {
    // Like mlx_lm's make_shards, but never leaves an empty shard behind.
    if (!shards.back().tensors.empty() && shards.back().nbytes + sizes[i] > max_shard_bytes) shards.emplace_back();
    shards.back().tensors.push_back(tensors[i]);
    shards.back().nbytes += sizes[i];
    plan.total_size += sizes[i];
  }
  for (size_t s = 0; s < shards.size(); ++s) {
    shards[s].file_name = shards.size() == 1 ? std::string("model.safetensors")
                                             : fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1, shards.size());
    for (const TensorDecl& t : shards[s].tensors) plan.weight_map[t.name] = shards[s].file_name;
  }
  plan.shards = std::move(shards);

  // mlx_lm's get_total_parameters: a quantized module counts its packed
  // weight as weight.size*32/bits and its bias, never scales or biases.
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorDecl& t = tensors[i];
    uint64_t numel = sizes[i] * 8 / static_cast<uint64_t>(dtype_bits(t.dtype));
    std::string module(module_of(t.name));
    bool quantized = names.count(module + ".scales") > 0 && module != t.name;
    if (!quantized) {
      plan.total_parameters += numel;
      continue;
    }
    std::string_view leaf = std::string_view(t.name).substr(module.size() + 1);
    if (leaf == "scales" || leaf == "biases") continue;
    if (leaf == "weight") {
      auto q = quant.for_module(module, true);
      uint64_t bits = static_cast<uint64_t>(q ? q->bits : quant.defaults().bits);
      plan.total_parameters += numel * 32 / bits;
    } else {
      plan.total_parameters += numel;
    }
  }
  return plan;
}

std::string format_config_json(ojson config) {
  config.erase("_name_or_path");
  config.erase("vision_config");
  if (auto q = config.find("quantization"); q != config.end()) config["quantization_config"] = *q;
  std::vector<std::string> keys;
  for (auto it = config.begin(); it != config.end(); ++it) keys.push_back(it.key());
  std::sort(keys.begin(), keys.end());
  ojson sorted = ojson::object();
  for (const std::string& k : keys) sorted[k] = std::move(config[k]);
  // Python's json.dump: indent 4, ASCII only.
  return sorted.dump(4, ' ', /*ensure_ascii=*/true);
}

std::string format_index_json(const ShardPlan& plan) {
  ojson index = ojson::object();
  index["metadata"]["total_size"] = plan.total_size;
  index["metadata"]["total_parameters"] = plan.total_parameters;
  ojson& wm = index["weight_map"] = ojson::object();
  for (const auto& [name, file] : plan.weight_map) wm[name] = file;
  return index.dump(4, ' ', /*ensure_ascii=*/true);
}

namespace {

// Python's json.dumps(sort_keys=True): every level sorted.
ojson sorted_deep(const ojson& v) {
  if (v.is_array()) {
    ojson out = ojson::array();
    for (const ojson& e : v) out.push_back(sorted_deep(e));
    return out;
  }
  if (!v.is_object()) return v;
  std::vector<std::string> keys;
  for (auto it = v.begin(); it != v.end(); ++it) keys.push_back(it.key());
  std::sort(keys.begin(), keys.end());
  ojson out = ojson::object();
  for (const std::string& k : keys) out[k] = sorted_deep(v.at(k));
  return out;
}

}  // namespace

std::string format_hf_config_json(ojson config) {
  for (const char* key : {"_name_or_path", "quantization", "quantization_config"}) config.erase(key);
  return sorted_deep(config).dump(2, ' ', /*ensure_ascii=*/true) + "\n";
}

std::string format_hf_index_json(const ShardPlan& plan) {
  ojson index = ojson::object();
  index["metadata"]["total_parameters"] = plan.total_parameters;
  index["metadata"]["total_size"] = plan.total_size;
  ojson& wm = index["weight_map"] = ojson::object();
  for (const auto& [name, file] : plan.weight_map) wm[name] = file;
  return index.dump(2, ' ', /*ensure_ascii=*/true) + "\n";
}

Result<std::vector<std::string>> side_files(const FileSystem& fs, const fs::path& src_dir) {
  MB_ASSIGN(std::vector<std::string> names, fs.list_dir(src_dir));
  std::vector<std::string> out;
  for (const std::string& n : names) {
    bool wanted = (ends_with(n, ".json") && n != "config.json" && !ends_with(n, ".safetensors.index.json")) ||
                  ends_with(n, ".py") || ends_with(n, ".txt") || ends_with(n, ".jsonl") || ends_with(n, ".jinja") ||
                  ends_with(n, ".tiktoken") || n == "tokenizer.model" || n == "tiktoken.model";
    if (!wanted) continue;
    auto st = fs.stat(src_dir / n);
    if (st.ok() && st->is_regular) out.push_back(n);
  }
  return out;
}

Status carry_over_side_files(FileSystem& fs, const fs::path& src_dir, const fs::path& out_dir) {
  if (src_dir.lexically_normal() == out_dir.lexically_normal()) return {};
  MB_ASSIGN(std::vector<std::string> names, side_files(fs, src_dir));
  for (const std::string& n : names) {
    fs::path from = src_dir / n;
    fs::path to = out_dir / n;
    MB_TRY(fs.remove(to));
    // A hard link to a symlink (a Hugging Face cache snapshot) would copy
    // the link, not the file, so symlinks are cloned or copied instead.
    MB_ASSIGN(FileStat lst, fs.lstat(from));
    if (lst.is_symlink) {
      if (!fs.reflink(from, to).ok()) MB_TRY(fs.copy_file(from, to));
      continue;
    }
    MB_TRY(link_or_copy(fs, from, to).status());
  }
  return {};
}

ModelDirWriter::ModelDirWriter(FileSystem& fs, fs::path out_dir, ShardPlan plan, ojson config, ModelDirOptions options)
    : m_fs(fs),
      m_out_dir(std::move(out_dir)),
      m_plan(std::move(plan)),
      m_config(std::move(config)),
      m_options(std::move(options)) {}

Result<std::unique_ptr<ModelDirWriter>> ModelDirWriter::create(FileSystem& fs, const fs::path& out_dir,
                                                               const std::vector<TensorDecl>& tensors, ojson config,
                                                               const ModelDirOptions& options) {
  if (!config.is_object()) return make_error(Errc::kInvalidInput, out_dir.string(), "config is not a JSON object");
  MB_ASSIGN(QuantizationConfig quant, QuantizationConfig::from_config(config, "config.json"));
  MB_ASSIGN(ShardPlan plan, plan_shards(tensors, options.max_shard_bytes, quant));
  std::unique_ptr<ModelDirWriter> w(new ModelDirWriter(fs, out_dir, std::move(plan), std::move(config), options));
  const std::map<std::string, std::string> metadata{
      {"format", options.layout == DirLayout::kHuggingFace ? "pt" : "mlx"}};
  for (size_t s = 0; s < w->m_plan.shards.size(); ++s) {
    const ShardPlan::Shard& shard = w->m_plan.shards[s];
    fs::path path = out_dir / shard.file_name;
    MB_ASSIGN(SafetensorsLayout layout, SafetensorsLayout::plan(shard.tensors, metadata, path.string()));
    MB_ASSIGN(auto writer, SafetensorsWriter::create(fs, path, std::move(layout)));
    w->m_writers.push_back(std::move(writer));
    for (const TensorDecl& t : shard.tensors) w->m_shard_of.emplace(t.name, s);
  }
  return w;
}

Status ModelDirWriter::write_tensor(std::string_view name, std::span<const std::byte> bytes) {
  auto it = m_shard_of.find(name);
  if (it == m_shard_of.end())
    return make_error(Errc::kInvalidInput, std::string(name), "tensor was not declared for {}", m_out_dir.string());
  return m_writers[it->second]->write_tensor(name, bytes);
}

Status ModelDirWriter::write_tensor_part(std::string_view name, uint64_t offset, std::span<const std::byte> bytes) {
  auto it = m_shard_of.find(name);
  if (it == m_shard_of.end())
    return make_error(Errc::kInvalidInput, std::string(name), "tensor was not declared for {}", m_out_dir.string());
  return m_writers[it->second]->write_tensor_part(name, offset, bytes);
}

Status ModelDirWriter::finish() {
  for (auto& w : m_writers) MB_TRY(w->finish());
  if (m_options.layout == DirLayout::kHuggingFace) {
    // transformers writes an index only for a sharded checkpoint.
    if (m_plan.shards.size() > 1)
      MB_TRY(write_file_atomic(m_fs, m_out_dir / kIndexFileName, format_hf_index_json(m_plan)));
    MB_TRY(write_file_atomic(m_fs, m_out_dir / "config.json", format_hf_config_json(m_config)));
  } else {
    MB_TRY(write_file_atomic(m_fs, m_out_dir / kIndexFileName, format_index_json(m_plan)));
    MB_TRY(write_file_atomic(m_fs, m_out_dir / "config.json", format_config_json(m_config)));
  }
  if (m_options.source_dir) MB_TRY(carry_over_side_files(m_fs, *m_options.source_dir, m_out_dir));
  return {};
}

}  // namespace mb
