#include "tensors/adapters.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <regex>

#include "tensors/safetensors.h"

namespace mb {

namespace {

using ordered_json = nlohmann::ordered_json;

// Python truthiness of a JSON value: null, false, 0, "", [] and {} are unset.
bool is_set(const ordered_json& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() != 0;
  if (v.is_string() || v.is_array() || v.is_object()) return !v.empty();
  return true;
}

Result<ordered_json> parse_object(std::string_view text, const std::string& where) {
  ordered_json j = ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error(Errc::kCorrupt, where, "adapter_config.json is not valid JSON");
  if (!j.is_object()) return make_error(Errc::kCorrupt, where, "adapter_config.json is not a JSON object");
  return j;
}

Result<int64_t> positive_int(const ordered_json& v, const std::string& where, std::string_view field) {
  if (!v.is_number_integer() || v.get<int64_t>() <= 0)
    return make_error(Errc::kInvalidInput, where, "\"{}\" must be a positive integer, not {}", field, v.dump());
  return v.get<int64_t>();
}

Result<double> finite_number(const ordered_json& v, const std::string& where, std::string_view field) {
  if (!v.is_number() || !std::isfinite(v.get<double>()))
    return make_error(Errc::kInvalidInput, where, "\"{}\" must be a number, not {}", field, v.dump());
  return v.get<double>();
}

Result<bool> boolean(const ordered_json& j, const char* field, const std::string& where) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_boolean()) return make_error(Errc::kInvalidInput, where, "\"{}\" must be true or false", field);
  return it->get<bool>();
}

// PEFT fields naming LoRA variants whose merge differs from W + s·B·A (or
// that cannot be merged at all). Set to anything truthy → rejected.
constexpr const char* kPeftVariantFields[] = {
    "use_qalora",
    "alora_invocation_tokens",
    "layer_replication",
    "megatron_config",
    "loftq_config",
    "eva_config",
    "corda_config",
    "arrow_config",
    "use_bdlora",
    "target_parameters",
    "trainable_token_indices",
    "lora_ga_config",
    "use_kasa",
    "use_dinit",
};

}  // namespace

const char* adapter_format_name(AdapterFormat format) { return format == AdapterFormat::kPeft ? "PEFT" : "MLX"; }

const LoraModule* Adapter::find(std::string_view module) const {
  auto it = std::lower_bound(modules.begin(), modules.end(), module,
                             [](const LoraModule& m, std::string_view name) { return m.module < name; });
  return it != modules.end() && it->module == module ? &*it : nullptr;
}

bool peft_pattern_matches(const std::string& key, const std::string& module) {
  try {
    // Python's re.match(rf"(.*\.)?({key})$", name): anchored at the start,
    // "$" at the end. Module names hold no newline, so a full match is the
    // same thing.
    const std::regex re("(.*\\.)?(" + key + ")", std::regex::ECMAScript);
    return std::regex_match(module, re);
  } catch (const std::regex_error&) {
    return false;
  }
}

int64_t PeftConfig::rank_for(const std::string& module) const {
  for (const auto& [key, value] : rank_pattern)
    if (peft_pattern_matches(key, module)) return value;
  return r;
}

double PeftConfig::alpha_for(const std::string& module) const {
  for (const auto& [key, value] : alpha_pattern)
    if (peft_pattern_matches(key, module)) return value;
  return lora_alpha;
}

float PeftConfig::scale_for(const std::string& module) const {
  const double r_m = static_cast<double>(rank_for(module));
  const double alpha_m = alpha_for(module);
  return static_cast<float>(use_rslora ? alpha_m / std::sqrt(r_m) : alpha_m / r_m);
}

Result<PeftConfig> parse_peft_config(std::string_view json_text, const std::string& where) {
  MB_ASSIGN(ordered_json j, parse_object(json_text, where));
  PeftConfig c;
  auto type = j.find("peft_type");
  if (type == j.end() || !type->is_string())
    return make_error(Errc::kInvalidInput, where, "no \"peft_type\": not a PEFT adapter config");
  if (type->get<std::string>() != "LORA")
    return make_error(Errc::kUnsupported, where, "peft_type \"{}\" is not supported (only LORA can be fused)",
                      type->get<std::string>());
  if (auto it = j.find("r"); it != j.end()) {
    MB_ASSIGN(c.r, positive_int(*it, where, "r"));
  }
  if (auto it = j.find("lora_alpha"); it != j.end()) {
    MB_ASSIGN(c.lora_alpha, finite_number(*it, where, "lora_alpha"));
  }
  MB_ASSIGN(c.use_rslora, boolean(j, "use_rslora", where));
  MB_ASSIGN(c.use_dora, boolean(j, "use_dora", where));
  MB_ASSIGN(c.fan_in_fan_out, boolean(j, "fan_in_fan_out", where));
  if (c.use_dora && c.fan_in_fan_out)
    return make_error(Errc::kUnsupported, where, "DoRA together with fan_in_fan_out is not supported");

  for (const char* field : {"rank_pattern", "alpha_pattern"}) {
    auto it = j.find(field);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_object()) return make_error(Errc::kInvalidInput, where, "\"{}\" must be an object", field);
    for (const auto& [key, value] : it->items()) {
      const std::string what = fmt::format("{}[\"{}\"]", field, key);
      try {
        std::regex probe("(.*\\.)?(" + key + ")");
      } catch (const std::regex_error&) {
        return make_error(Errc::kInvalidInput, where, "{} is not a valid regular expression", what);
      }
      if (field[0] == 'r') {
        MB_ASSIGN(int64_t r, positive_int(value, where, what));
        c.rank_pattern.emplace_back(key, r);
      } else {
        MB_ASSIGN(double alpha, finite_number(value, where, what));
        c.alpha_pattern.emplace_back(key, alpha);
      }
    }
  }

  if (auto it = j.find("lora_bias"); it != j.end() && is_set(*it))
    return make_error(Errc::kUnsupported, where, "lora_bias: true (a bias on LoRA B) is not supported");
  if (auto it = j.find("bias"); it != j.end() && it->is_string() && it->get<std::string>() != "none")
    return make_error(Errc::kUnsupported, where, "bias \"{}\" (trained base biases) is not supported; only \"none\"",
                      it->get<std::string>());
  for (const char* field : kPeftVariantFields) {
    auto it = j.find(field);
    if (it != j.end() && is_set(*it))
      return make_error(Errc::kUnsupported, where, "\"{}\" is set ({}): this LoRA variant cannot be fused here", field,
                        it->dump());
  }
  if (auto it = j.find("init_lora_weights"); it != j.end() && it->is_string()) {
    const std::string init = it->get<std::string>();
    for (const char* residual : {"pissa", "olora", "corda", "loftq"})
      if (init.rfind(residual, 0) == 0)
        c.warnings.push_back(fmt::format(
            "{}: init_lora_weights \"{}\" may have changed the base weights during training; fusing onto the "
            "original base is only right if the adapter was saved converted",
            where, init));
  }
  return c;
}

Result<MlxAdapterConfig> parse_mlx_adapter_config(std::string_view json_text, const std::string& where) {
  MB_ASSIGN(ordered_json j, parse_object(json_text, where));
  MlxAdapterConfig c;
  std::string type = "lora";
  if (auto it = j.find("fine_tune_type"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) return make_error(Errc::kInvalidInput, where, "\"fine_tune_type\" must be a string");
    type = it->get<std::string>();
  } else {
    // Before mlx-examples #903 DoRA was a "use_dora" flag.
    MB_ASSIGN(bool use_dora, boolean(j, "use_dora", where));
    if (use_dora) type = "dora";
  }
  if (type == "full")
    return make_error(Errc::kUnsupported, where,
                      "fine_tune_type \"full\" stores whole weights, not a LoRA: nothing to fuse (use the trained "
                      "weights as a model)");
  if (type != "lora" && type != "dora")
    return make_error(Errc::kUnsupported, where, "fine_tune_type \"{}\" is not supported (lora or dora)", type);
  c.dora = type == "dora";

  auto lp = j.find("lora_parameters");
  if (lp == j.end() || !lp->is_object())
    return make_error(Errc::kInvalidInput, where, "no \"lora_parameters\" object (rank and scale are needed)");
  if (auto it = lp->find("rank"); it != lp->end()) {
    MB_ASSIGN(c.rank, positive_int(*it, where, "lora_parameters.rank"));
  }
  if (auto it = lp->find("scale"); it != lp->end()) {
    MB_ASSIGN(double scale, finite_number(*it, where, "lora_parameters.scale"));
    c.scale = static_cast<float>(scale);
  }
  if (auto it = lp->find("keys"); it != lp->end() && !it->is_null()) {
    if (!it->is_array()) return make_error(Errc::kInvalidInput, where, "\"lora_parameters.keys\" must be a list");
    for (const auto& k : *it) {
      if (!k.is_string()) return make_error(Errc::kInvalidInput, where, "\"lora_parameters.keys\" must hold strings");
      c.keys.push_back(k.get<std::string>());
    }
  }
  for (const char* field : {"num_layers", "lora_layers"}) {
    auto it = j.find(field);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_number_integer()) return make_error(Errc::kInvalidInput, where, "\"{}\" must be an integer", field);
    c.num_layers = it->get<int64_t>();
    break;
  }
  return c;
}

// ---- Loading ---------------------------------------------------------------

namespace {

// One factor tensor converted to f32, with its 2-D shape.
struct Factor {
  std::string tensor;  // name in the file
  int64_t d0 = 0, d1 = 0;
  std::vector<float> values;
};

Result<Factor> read_factor(const SafetensorsFile& file, const TensorInfo& info, int expected_rank) {
  if (static_cast<int>(info.shape.size()) != expected_rank) {
    if (expected_rank == 2 && info.shape.size() == 3)
      return make_error(Errc::kUnsupported, file.where(),
                        "tensor {}: 3-D LoRA factors (mixture-of-experts SwitchLinear) are not supported", info.name);
    return make_error(Errc::kInvalidInput, file.where(), "tensor {} has {} dimensions, expected {}", info.name,
                      info.shape.size(), expected_rank);
  }
  if (info.dtype != DType::kF32 && info.dtype != DType::kF16 && info.dtype != DType::kBF16)
    return make_error(Errc::kUnsupported, file.where(),
                      "tensor {} has dtype {}; adapter factors must be F32, F16 or BF16", info.name,
                      dtype_name(info.dtype));
  Factor f;
  f.tensor = info.name;
  f.d0 = info.shape[0];
  f.d1 = expected_rank == 2 ? info.shape[1] : 1;
  f.values.resize(static_cast<size_t>(info.numel()));
  Status st = to_f32(info.dtype, file.data(info), f.values);
  if (!st.ok()) return make_error(Errc::kCorrupt, file.where(), "tensor {}: {}", info.name, st.error().message);
  return f;
}

std::vector<float> transpose(const std::vector<float>& v, int64_t rows, int64_t cols) {
  std::vector<float> t(v.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) t[static_cast<size_t>(c * rows + r)] = v[static_cast<size_t>(r * cols + c)];
  return t;
}

// The factors of one module as found in the file, before normalization.
struct RawModule {
  std::optional<Factor> a, b, magnitude;
  bool embedding = false;  // PEFT lora_embedding_*, or an MLX embedding
};

bool strip_suffix(std::string& s, std::string_view suffix) {
  if (s.size() <= suffix.size() || s.compare(s.size() - suffix.size(), suffix.size(), suffix) != 0) return false;
  s.resize(s.size() - suffix.size());
  return true;
}

enum class Role { kA, kB, kMagnitude, kEmbA, kEmbB };

// PEFT key → (module, role), or nullopt for a tensor that is no LoRA factor.
std::optional<std::pair<std::string, Role>> classify_peft(const std::string& key) {
  std::string k = key;
  if (k.rfind("base_model.model.", 0) == 0) k = k.substr(17);
  static const std::pair<const char*, Role> kSuffixes[] = {
      {".lora_A.weight", Role::kA},
      {".lora_A.default.weight", Role::kA},
      {".lora_B.weight", Role::kB},
      {".lora_B.default.weight", Role::kB},
      {".lora_magnitude_vector", Role::kMagnitude},
      {".lora_magnitude_vector.weight", Role::kMagnitude},
      {".lora_magnitude_vector.default", Role::kMagnitude},
      {".lora_magnitude_vector.default.weight", Role::kMagnitude},
      {".lora_embedding_A", Role::kEmbA},
      {".lora_embedding_A.default", Role::kEmbA},
      {".lora_embedding_B", Role::kEmbB},
      {".lora_embedding_B.default", Role::kEmbB},
  };
  for (const auto& [suffix, role] : kSuffixes) {
    std::string m = k;
    if (strip_suffix(m, suffix)) return std::make_pair(m, role);
  }
  return std::nullopt;
}

std::optional<std::pair<std::string, Role>> classify_mlx(const std::string& key) {
  static const std::pair<const char*, Role> kSuffixes[] = {
      {".lora_a", Role::kA}, {".lora_b", Role::kB}, {".m", Role::kMagnitude}};
  for (const auto& [suffix, role] : kSuffixes) {
    std::string m = key;
    if (strip_suffix(m, suffix)) return std::make_pair(m, role);
  }
  return std::nullopt;
}

bool mlx_is_embedding(const std::string& module) {
  const size_t dot = module.rfind('.');
  return module.find("embed", dot == std::string::npos ? 0 : dot + 1) != std::string::npos;
}

// Normalizes one module to a [rank,in], b [out,rank]. `where` is the file.
Result<LoraModule> normalize(AdapterFormat format, const std::string& module, RawModule raw, int64_t config_rank,
                             float scale, bool dora, bool fan_in_fan_out, const std::string& where) {
  if (!raw.a || !raw.b)
    return make_error(Errc::kCorrupt, where, "module {} has lora_{} but no lora_{}", module, raw.a ? "A" : "B",
                      raw.a ? "B" : "A");
  Factor& fa = *raw.a;
  Factor& fb = *raw.b;
  LoraModule m;
  m.module = module;
  m.scale = scale;
  int64_t rank_a = 0, rank_b = 0;
  if (format == AdapterFormat::kPeft && !raw.embedding && !fan_in_fan_out) {
    // lora_A [r, in], lora_B [out, r]: already normalized.
    rank_a = fa.d0, rank_b = fb.d1, m.in = fa.d1, m.out = fb.d0;
    m.a = std::move(fa.values), m.b = std::move(fb.values);
  } else if (format == AdapterFormat::kPeft) {
    // Embedding: A [r, vocab], B [dims, r], delta = s(B@A)ᵀ [vocab, dims].
    // fan_in_fan_out: the base is stored [in, out] and gets s(B@A)ᵀ too.
    rank_a = fa.d0, rank_b = fb.d1, m.out = fa.d1, m.in = fb.d0;
    m.a = transpose(fb.values, fb.d0, fb.d1);  // [r, dims]
    m.b = transpose(fa.values, fa.d0, fa.d1);  // [vocab, r]
  } else if (!raw.embedding) {
    // MLX Linear: lora_a [in, r], lora_b [r, out].
    rank_a = fa.d1, rank_b = fb.d0, m.in = fa.d0, m.out = fb.d1;
    m.a = transpose(fa.values, fa.d0, fa.d1);
    m.b = transpose(fb.values, fb.d0, fb.d1);
  } else {
    // MLX Embedding: lora_a [vocab, r], lora_b [r, dims], delta = s·a@b.
    rank_a = fa.d1, rank_b = fb.d0, m.out = fa.d0, m.in = fb.d1;
    m.b = std::move(fa.values), m.a = std::move(fb.values);
  }
  if (rank_a != rank_b)
    return make_error(Errc::kInvalidInput, where, "module {}: {} has rank {} but {} has rank {}", module, fa.tensor,
                      rank_a, fb.tensor, rank_b);
  if (rank_a != config_rank)
    return make_error(Errc::kInvalidInput, where, "module {}: {} has rank {} but adapter_config.json says {}", module,
                      fa.tensor, rank_a, config_rank);
  m.rank = rank_a;
  if (m.in <= 0 || m.out <= 0) return make_error(Errc::kInvalidInput, where, "module {}: empty LoRA factors", module);
  if (raw.magnitude) {
    if (!dora)
      return make_error(Errc::kInvalidInput, where,
                        "tensor {}: a DoRA magnitude in an adapter configured as plain LoRA", raw.magnitude->tensor);
    if (raw.embedding)
      return make_error(Errc::kUnsupported, where, "module {}: DoRA on an embedding is not supported", module);
    if (raw.magnitude->d0 != m.out)
      return make_error(Errc::kInvalidInput, where, "tensor {} has {} elements, expected out_features = {}",
                        raw.magnitude->tensor, raw.magnitude->d0, m.out);
    m.magnitude = std::move(raw.magnitude->values);
  } else if (dora) {
    return make_error(Errc::kCorrupt, where, "module {}: the adapter is configured as DoRA but has no magnitude vector",
                      module);
  }
  return m;
}

}  // namespace

Result<AdapterFormat> detect_adapter_format(const FileSystem& fs, const fs::path& dir) {
  const bool peft = fs.stat(dir / "adapter_model.safetensors").ok();
  const bool mlx = fs.stat(dir / "adapters.safetensors").ok();
  if (peft && mlx) {
    auto text = fs.read_file(dir / "adapter_config.json");
    const bool has_peft_type = text.ok() && text->find("\"peft_type\"") != std::string::npos;
    return has_peft_type ? AdapterFormat::kPeft : AdapterFormat::kMlx;
  }
  if (peft) return AdapterFormat::kPeft;
  if (mlx) return AdapterFormat::kMlx;
  if (fs.stat(dir / "adapter_model.bin").ok())
    return make_error(Errc::kUnsupported, (dir / "adapter_model.bin").string(),
                      "PyTorch pickle adapters are not supported; save the adapter as safetensors "
                      "(save_pretrained(safe_serialization=True))");
  if (fs.stat(dir / "adapters.npz").ok())
    return make_error(Errc::kUnsupported, (dir / "adapters.npz").string(),
                      "old MLX .npz adapters are not supported; re-save them as adapters.safetensors");
  if (!fs.stat(dir).ok()) return make_error(Errc::kNotFound, dir.string(), "adapter directory does not exist");
  return make_error(Errc::kNotFound, dir.string(),
                    "no adapters.safetensors (MLX) or adapter_model.safetensors (PEFT) in the adapter directory");
}

Result<Adapter> load_adapter(const FileSystem& fs, const fs::path& dir) {
  MB_ASSIGN(AdapterFormat format, detect_adapter_format(fs, dir));
  Adapter adapter;
  adapter.format = format;
  adapter.dir = dir;
  adapter.weights_file = dir / (format == AdapterFormat::kPeft ? "adapter_model.safetensors" : "adapters.safetensors");
  const fs::path config_path = dir / "adapter_config.json";
  auto config_text = fs.read_file(config_path);
  if (!config_text.ok()) {
    if (config_text.error().code == Errc::kNotFound)
      return make_error(Errc::kInvalidInput, config_path.string(),
                        "adapter_config.json is missing (needed for the scale)");
    return config_text.error();
  }
  std::optional<PeftConfig> peft;
  std::optional<MlxAdapterConfig> mlx;
  if (format == AdapterFormat::kPeft) {
    MB_ASSIGN(peft, parse_peft_config(*config_text, config_path.string()));
    adapter.dora = peft->use_dora;
    adapter.warnings = peft->warnings;
  } else {
    MB_ASSIGN(mlx, parse_mlx_adapter_config(*config_text, config_path.string()));
    adapter.dora = mlx->dora;
  }

  MB_ASSIGN(SafetensorsFile file, SafetensorsFile::open(fs, adapter.weights_file));
  const std::string where = file.where();
  std::map<std::string, RawModule> raw;
  for (const TensorInfo& info : file.tensors()) {
    auto cls = format == AdapterFormat::kPeft ? classify_peft(info.name) : classify_mlx(info.name);
    if (!cls)
      return make_error(
          Errc::kUnsupported, where,
          "tensor {} is not a LoRA factor ({}); full weights, biases and modules_to_save are not "
          "supported",
          info.name,
          format == AdapterFormat::kPeft ? "expected lora_A/lora_B/lora_magnitude_vector" : "expected lora_a/lora_b/m");
    auto& [module, role] = *cls;
    RawModule& r = raw[module];
    std::optional<Factor>* slot = nullptr;
    switch (role) {
      case Role::kA:
        slot = &r.a;
        break;
      case Role::kB:
        slot = &r.b;
        break;
      case Role::kMagnitude:
        slot = &r.magnitude;
        break;
      case Role::kEmbA:
        slot = &r.a, r.embedding = true;
        break;
      case Role::kEmbB:
        slot = &r.b, r.embedding = true;
        break;
    }
    if (slot->has_value())
      return make_error(Errc::kCorrupt, where, "tensor {}: module {} has this factor twice", info.name, module);
    MB_ASSIGN(Factor f, read_factor(file, info, role == Role::kMagnitude ? 1 : 2));
    *slot = std::move(f);
    if (format == AdapterFormat::kMlx) r.embedding = mlx_is_embedding(module);
  }
  if (raw.empty()) return make_error(Errc::kInvalidInput, where, "the adapter holds no LoRA tensors");

  for (auto& [module, r] : raw) {
    const int64_t rank = peft ? peft->rank_for(module) : mlx->rank;
    const float scale = peft ? peft->scale_for(module) : mlx->scale;
    const bool fifo = peft && peft->fan_in_fan_out;
    MB_ASSIGN(LoraModule m, normalize(format, module, std::move(r), rank, scale, adapter.dora, fifo, where));
    adapter.modules.push_back(std::move(m));
  }
  return adapter;  // std::map iteration: already sorted by module path
}

Result<std::vector<Adapter>> load_adapters(const FileSystem& fs, const std::vector<fs::path>& dirs) {
  std::vector<Adapter> out;
  for (const fs::path& dir : dirs) {
    MB_ASSIGN(Adapter a, load_adapter(fs, dir));
    out.push_back(std::move(a));
  }
  return out;
}

Status validate_adapter(const Adapter& adapter, const BaseShapeLookup& base_shape, const std::string& base_name) {
  const std::string file = adapter.weights_file.string();
  for (const LoraModule& m : adapter.modules) {
    const std::string weight = m.weight_name();
    const auto shape = base_shape(weight);
    if (!shape)
      return make_error(Errc::kInvalidInput, file,
                        "adapted module {} does not exist in the base model {} (no tensor {})", m.module, base_name,
                        weight);
    if (shape->first != m.out || shape->second != m.in)
      return make_error(Errc::kInvalidInput, file,
                        "module {}: the adapter is for a [{}, {}] weight but the base's {} is [{}, {}] (out, in)",
                        m.module, m.out, m.in, weight, shape->first, shape->second);
  }
  return Status::ok_status();
}

}  // namespace mb
