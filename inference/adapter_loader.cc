#include "inference/adapter_loader.h"

#include <cmath>
#include <cstring>
#include <map>

#include <nlohmann/json.hpp>

#include "inference/safetensors_view.h"

namespace mb::inference {

namespace {

using nlohmann::json;

struct Format {
  bool peft = false;
  float scale = 1;
};

Result<Format> read_config(const FileSystem& fs, const fs::path& dir, bool peft) {
  const fs::path path = dir / "adapter_config.json";
  MB_ASSIGN(std::string text, fs.read_file(path));
  json j = json::parse(text, nullptr, false);
  const std::string where = path.string();
  if (!j.is_object()) return Error{Errc::kCorrupt, where, "not a JSON object"};
  Format f;
  f.peft = peft;
  if (peft) {
    if (j.value("peft_type", std::string("LORA")) != "LORA")
      return Error{Errc::kUnsupported, where, "only peft_type LORA is supported"};
    if (j.value("use_dora", false)) return Error{Errc::kUnsupported, where, "DoRA adapters are not supported"};
    if (j.value("fan_in_fan_out", false)) return Error{Errc::kUnsupported, where, "fan_in_fan_out is not supported"};
    for (const char* k : {"rank_pattern", "alpha_pattern"})
      if (j.contains(k) && j[k].is_object() && !j[k].empty())
        return Error{Errc::kUnsupported, where, fmt::format("\"{}\" is not supported", k)};
    if (!j.contains("r") || !j["r"].is_number() || !j.contains("lora_alpha") || !j["lora_alpha"].is_number())
      return Error{Errc::kInvalidInput, where, "missing \"r\" or \"lora_alpha\""};
    const double r = j["r"].get<double>(), alpha = j["lora_alpha"].get<double>();
    if (!(r > 0)) return Error{Errc::kInvalidInput, where, "\"r\" must be positive"};
    f.scale = static_cast<float>(j.value("use_rslora", false) ? alpha / std::sqrt(r) : alpha / r);
  } else {
    const std::string type = j.value("fine_tune_type", std::string("lora"));
    if (type != "lora")
      return Error{Errc::kUnsupported, where, fmt::format("fine_tune_type \"{}\" is not supported (lora only)", type)};
    auto lp = j.find("lora_parameters");
    if (lp == j.end() || !lp->is_object()) return Error{Errc::kInvalidInput, where, "missing \"lora_parameters\""};
    auto sc = lp->find("scale");
    f.scale = sc != lp->end() && sc->is_number() ? sc->get<float>() : 20.0f;  // mlx-lm's default
  }
  return f;
}

}  // namespace

Result<std::vector<AdapterModule>> load_adapter(const FileSystem& fs, const fs::path& dir) {
  const fs::path mlx_file = dir / "adapters.safetensors", peft_file = dir / "adapter_model.safetensors";
  const bool peft = fs.stat(peft_file).ok();
  if (!peft && !fs.stat(mlx_file).ok())
    return Error{Errc::kNotFound, dir.string(), "no adapters.safetensors (MLX) or adapter_model.safetensors (PEFT)"};
  MB_ASSIGN(Format f, read_config(fs, dir, peft));
  SafetensorsView view;
  MB_TRY(view.add_file(fs, peft ? peft_file : mlx_file));

  std::map<std::string, AdapterModule> mods;
  for (const auto& [key, t] : view.tensors()) {
    std::string module;
    bool is_a = false;
    if (peft) {
      std::string k = key;
      if (k.rfind("base_model.model.", 0) == 0) k = k.substr(17);
      for (const char* tag : {".lora_A.weight", ".lora_A.default.weight", ".lora_B.weight", ".lora_B.default.weight"})
        if (k.ends_with(tag)) {
          module = k.substr(0, k.size() - std::strlen(tag));
          is_a = tag[6] == 'A';
        }
      if (module.empty())
        return Error{Errc::kUnsupported, key, "unsupported PEFT adapter tensor (plain LoRA on linear modules only)"};
    } else {
      if (key.ends_with(".lora_a")) is_a = true;
      else if (key.ends_with(".lora_b")) is_a = false;
      else return Error{Errc::kUnsupported, key, "unsupported MLX adapter tensor (plain LoRA only)"};
      module = key.substr(0, key.size() - 7);
    }
    if (t.shape.size() != 2) return Error{Errc::kCorrupt, key, "LoRA factor must be 2-D"};
    MB_ASSIGN(std::vector<float> v, tensor_to_f32(t, key));
    AdapterModule& m = mods[module];
    m.module = module;
    m.scale = f.scale;
    // Normalize to a [rank, in], b [out, rank] (PEFT's orientation).
    const int64_t d0 = t.shape[0], d1 = t.shape[1];
    if (peft) {
      if (is_a) {
        m.rank = d0, m.in = d1, m.a = std::move(v);
      } else {
        m.out = d0, m.b = std::move(v);
        if (m.rank && d1 != m.rank) return Error{Errc::kCorrupt, key, "rank differs between lora_A and lora_B"};
      }
    } else if (is_a) {  // lora_a [in, r]
      m.in = d0, m.rank = d1, m.a.resize(v.size());
      for (int64_t i = 0; i < d0; ++i)
        for (int64_t r = 0; r < d1; ++r) m.a[r * d0 + i] = v[i * d1 + r];
    } else {  // lora_b [r, out]
      m.out = d1, m.b.resize(v.size());
      for (int64_t r = 0; r < d0; ++r)
        for (int64_t o = 0; o < d1; ++o) m.b[o * d0 + r] = v[r * d1 + o];
    }
  }
  std::vector<AdapterModule> out;
  for (auto& [name, m] : mods) {
    if (m.a.empty() || m.b.empty())
      return Error{Errc::kCorrupt, dir.string(), fmt::format("module {} has only one of its two LoRA factors", name)};
    if (static_cast<int64_t>(m.b.size()) != m.out * m.rank)
      return Error{Errc::kCorrupt, dir.string(), fmt::format("module {}: lora A and B ranks differ", name)};
    out.push_back(std::move(m));
  }
  if (out.empty()) return Error{Errc::kInvalidInput, dir.string(), "adapter has no LoRA tensors"};
  return out;
}

}  // namespace mb::inference
