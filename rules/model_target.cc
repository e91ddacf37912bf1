#include "rules/model_target.h"

#include <algorithm>

#include "rules/export.h"
#include "rules/fidelity.h"
#include "rules/fuse.h"
#include "rules/model_params.h"
#include "rules/model_preflight.h"
#include "rules/model_search.h"

namespace mb {
namespace {

const std::vector<std::string> kDefaultKeys = {"fusion",    "bits", "group_size",         "dtype",
                                               "quantizer", "gate", "min_delta_retention"};
const std::vector<int64_t> kBits = {2, 3, 4, 5, 6, 8};
// The GGUF file types an export writes (tensors/gguf_type_choice.h).
const std::vector<std::string> kGgufTypes = {"F16", "BF16", "Q8_0", "Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K"};

std::string upper(std::string s) {
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return s;
}

// The target's own `candidates` list, or an error saying what it must hold.
Result<YAML::Node> candidate_list(TargetReader& r, std::string_view must_be) {
  YAML::Node list = r.get("candidates");
  if (!list.IsSequence() || list.size() == 0)
    return r.error("candidates", fmt::format("'candidates' must be a non-empty list of {}", must_be));
  return list;
}

// A GGUF type name, or an error at `node` with a did-you-mean.
Status check_gguf_type(const YamlReader& y, const YAML::Node& node, const std::string& s, std::string_view what) {
  if (std::find(kGgufTypes.begin(), kGgufTypes.end(), s) != kGgufTypes.end()) return {};
  std::string hint = upper(s);
  if (std::find(kGgufTypes.begin(), kGgufTypes.end(), hint) == kGgufTypes.end()) hint = did_you_mean(s, kGgufTypes);
  return y.error(node, fmt::format("unknown GGUF type '{}': {} must be F16, BF16, Q8_0, Q4_0, Q4_K_M, Q5_K_M or "
                                   "Q6_K{}",
                                   s, what, hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint)));
}

// gguf_type: auto's `candidates`: GGUF type names, each once.
Status parse_gguf_candidates(TargetReader& r, ModelSpec& m) {
  m.gguf_candidates = kDefaultGgufCandidates;
  if (!r.has_own("candidates")) return {};
  MB_ASSIGN(const YAML::Node list, candidate_list(r, "GGUF types with gguf_type: auto, e.g. [Q4_K_M, Q6_K, Q8_0]"));
  const YamlReader& y = r.yaml();
  m.gguf_candidates.clear();
  for (const YAML::Node& t : list) {
    if (!t.IsScalar()) return y.error(t, "a GGUF candidate is a type name such as Q4_K_M");
    const std::string s = t.Scalar();
    MB_TRY(check_gguf_type(y, t, s, "a candidate"));
    if (std::find(m.gguf_candidates.begin(), m.gguf_candidates.end(), s) != m.gguf_candidates.end())
      return y.error(t, fmt::format("candidate {} is listed twice", s));
    m.gguf_candidates.push_back(s);
  }
  return {};
}

// gguf_type: exactly as llama.cpp's quantizer names the file types (a
// lower-case or near spelling gets a did-you-mean), or auto: search.
Status parse_gguf_type(TargetReader& r, ModelSpec& m) {
  MB_ASSIGN(std::string s, r.string("gguf_type"));
  if (s == "auto") {
    m.gguf_type = s;
    return parse_gguf_candidates(r, m);
  }
  MB_TRY(check_gguf_type(r.yaml(), r.get("gguf_type"), s, "gguf_type"));
  m.gguf_type = s;
  return {};
}

Status parse_format(TargetReader& r, ModelSpec& m) {
  if (r.has_own("format")) {
    MB_ASSIGN(std::string s, r.one_of("format", {"mlx", "gguf", "hf"}));
    m.format = s == "gguf" ? ModelFormat::kGguf : s == "hf" ? ModelFormat::kHf : ModelFormat::kMlx;
  }
  if (m.format == ModelFormat::kGguf && !r.has_own("gguf_type"))
    return r.error("format", fmt::format("target '{}': format: gguf needs gguf_type (F16, BF16, Q8_0, Q4_0, Q4_K_M, "
                                         "Q5_K_M, Q6_K, or auto to search)",
                                         r.target()));
  if (!r.has_own("gguf_type")) return {};
  if (m.format != ModelFormat::kGguf)
    return r.error(
        "gguf_type",
        fmt::format("target '{}': gguf_type is for format: gguf; add format: gguf or remove gguf_type", r.target()));
  return parse_gguf_type(r, m);
}

Status parse_fusion(TargetReader& r, ModelSpec& m) {
  m.fusion = m.adapters.empty() ? Fusion::kNone : Fusion::kDequantize;
  if (!r.has("fusion")) return {};
  MB_ASSIGN(std::string s, r.one_of("fusion", {"dequantize", "inplace", "none"}));
  m.fusion = s == "dequantize" ? Fusion::kDequantize : s == "inplace" ? Fusion::kInplace : Fusion::kNone;
  return {};
}

Status parse_candidates(TargetReader& r, ModelSpec& m) {
  m.candidates = kDefaultBitsCandidates;
  if (!r.has_own("candidates")) return {};
  MB_ASSIGN(const YAML::Node list, candidate_list(r, "[bits, group_size] pairs"));
  const YamlReader& y = r.yaml();
  m.candidates.clear();
  for (const YAML::Node& pair : list) {
    if (!pair.IsSequence() || pair.size() != 2)
      return y.error(pair, "a candidate is a [bits, group_size] pair, e.g. [4, 64]");
    MB_ASSIGN(int64_t bits, y.integer(pair[0], "bits"));
    MB_ASSIGN(int64_t gs, y.integer(pair[1], "group_size"));
    if (std::find(kBits.begin(), kBits.end(), bits) == kBits.end())
      return y.error(pair[0], fmt::format("a candidate's bits must be 2, 3, 4, 5, 6 or 8, got {}", bits));
    if (gs != 32 && gs != 64 && gs != 128)
      return y.error(pair[1], fmt::format("a candidate's group size must be 32, 64 or 128, got {}", gs));
    const std::pair<int, int> c{static_cast<int>(bits), static_cast<int>(gs)};
    if (std::find(m.candidates.begin(), m.candidates.end(), c) != m.candidates.end())
      return y.error(pair, fmt::format("candidate [{}, {}] is listed twice", bits, gs));
    m.candidates.push_back(c);
  }
  return {};
}

Status parse_bits(TargetReader& r, ModelSpec& m) {
  if (YAML::Node b = r.get("bits"); b && b.IsScalar() && b.Scalar() == "auto") {
    m.auto_bits = true;
    MB_TRY(parse_candidates(r, m));
  } else if (r.has_own("candidates") && !m.auto_gguf()) {
    return r.error("candidates", "'candidates' is for bits: auto or gguf_type: auto");
  } else if (b && !b.IsNull() && !(b.IsScalar() && b.Scalar() == "none")) {
    MB_ASSIGN(int64_t bits, r.integer("bits"));
    if (std::find(kBits.begin(), kBits.end(), bits) == kBits.end())
      return r.error("bits", fmt::format("bits must be 2, 3, 4, 5, 6, 8 or none, got {}", bits));
    m.bits = static_cast<int>(bits);
  }
  if (r.has("group_size")) {
    MB_ASSIGN(int64_t gs, r.integer("group_size"));
    if (gs != 32 && gs != 64 && gs != 128)
      return r.error("group_size", fmt::format("group_size must be 32, 64 or 128, got {}", gs));
    m.group_size = static_cast<int>(gs);
  }
  return {};
}

Status parse_dtype(TargetReader& r, ModelSpec& m) {
  if (r.has("dtype")) {
    MB_ASSIGN(std::string s, r.string("dtype"));
    if (s == "f16" || s == "fp16") s = "float16";
    if (s == "bf16") s = "bfloat16";
    if (s == "f32" || s == "fp32") s = "float32";
    if (s != "float16" && s != "bfloat16" && s != "float32")
      return r.error("dtype", fmt::format("dtype must be float16, bfloat16 or float32, got '{}'", s));
    m.dtype = s;
  }
  if (r.has("quantizer")) {
    MB_ASSIGN(m.quantizer, r.one_of("quantizer", {"gpu", "cpu"}));
  }
  if (r.has("min_delta_retention")) {
    MB_ASSIGN(double x, r.fraction("min_delta_retention"));
    m.min_delta_retention = x;
  }
  return {};
}

// An export writes float weights (hf) or quantizes with its GGUF type
// (gguf): MLX's bits, group size and quantizer mean nothing to it. Given on
// the target they are an error; from `defaults:` they are the other
// targets' and are ignored here.
Status check_export(const TargetReader& r, ModelSpec& m) {
  if (m.format == ModelFormat::kMlx) return {};
  const std::string& name = r.target();
  const bool gguf = m.format == ModelFormat::kGguf;
  for (const char* key : {"bits", "group_size", "quantizer", "candidates"}) {
    if (!r.has_own(key) || (m.auto_gguf() && std::string_view(key) == "candidates")) continue;
    return r.error(key, gguf ? fmt::format("target '{}': format: gguf quantizes to its gguf_type ({}); '{}' is for "
                                           "MLX quantization: remove it",
                                           name, m.gguf_type, key)
                             : fmt::format("target '{}': format: hf writes float weights (transformers loads no MLX "
                                           "quantization); remove '{}', or use dtype to choose the float type",
                                           name, key));
  }
  m.bits.reset();
  m.auto_bits = false;
  const char* format = model_format_name(m.format);
  if (m.fusion == Fusion::kInplace)
    return r.error("fusion", fmt::format("target '{}': fusion: inplace re-quantizes into the base's MLX bits, and "
                                         "format: {} needs the fused weights in float: use fusion: dequantize",
                                         name, format));
  if (m.fusion == Fusion::kNone && !m.adapters.empty())
    return r.error(r.has_own("fusion") ? "fusion" : "",
                   fmt::format("target '{}': fusion: none applies the adapters at run time, and a {} export can "
                               "only carry fused weights: use fusion: dequantize",
                               name, format));
  if (!gguf && (r.has_own("min_delta_retention") || (r.has_own("gate") && m.gate && m.gate->min_delta_retention)))
    return r.error(r.has_own("min_delta_retention") ? "min_delta_retention" : "gate",
                   fmt::format("target '{}': format: hf writes the fused float weights as they are, so there is no "
                               "quantization whose delta retention could be measured",
                               name));
  return {};
}

// Combinations that cannot mean what the user wants.
Status check_combination(const TargetReader& r, const ModelSpec& m) {
  const std::string& name = r.target();
  if (m.fusion == Fusion::kInplace && m.adapters.empty())
    return r.error(fmt::format("target '{}': fusion: inplace needs adapters", name));
  if (m.fusion == Fusion::kInplace && r.has_own("bits"))
    return r.error("bits", fmt::format("target '{}': fusion: inplace keeps the base's own bits and group "
                                       "size; remove 'bits' or use fusion: dequantize",
                                       name));
  // A threshold nothing measures would pass silently: retention is measured
  // where adapters are fused into quantized weights. (From `defaults:` it
  // applies to the targets that fuse and is no error on the others.)
  const bool own_retention =
      r.has_own("min_delta_retention") || (r.has_own("gate") && m.gate && m.gate->min_delta_retention);
  if (own_retention && (m.adapters.empty() || m.fusion == Fusion::kNone))
    return r.error(r.has_own("min_delta_retention") ? "min_delta_retention" : "gate",
                   fmt::format("target '{}': min_delta_retention measures how much of the adapters' weight change "
                               "the quantized weights keep, and this target fuses no adapters",
                               name));
  if (m.auto_bits && (m.fusion != Fusion::kDequantize || m.adapters.empty()))
    return r.error("bits", fmt::format("target '{}': bits: auto searches the bits to fuse into, so it needs adapters "
                                       "and fusion: dequantize",
                                       name));
  if (m.auto_gguf() && !m.gate)
    return r.error("gguf_type", fmt::format("target '{}': gguf_type: auto keeps the smallest GGUF type that passes the "
                                            "gate, so it needs a gate",
                                            name));
  if (m.auto_bits && !m.gate)
    return r.error("bits", fmt::format("target '{}': bits: auto keeps the smallest candidate that passes the gate, so "
                                       "it needs a gate",
                                       name));
  if (m.fusion == Fusion::kNone && !m.adapters.empty() && m.bits)
    return r.error(r.has_own("bits") ? "bits" : "", fmt::format("target '{}': fusion: none applies the adapters at "
                                                                "run time, so there is nothing to quantize; use "
                                                                "fusion: dequantize",
                                                                name));
  return {};
}

// The artifact of a target with adapters fused in, and the step whose report
// holds the delta retention (-1 when nothing is quantized).
Result<std::pair<InputRef, int>> expand_fusion(const ModelSpec& m, TargetExpansion& x, const InputRef& base,
                                               const std::vector<InputRef>& adapters) {
  std::vector<InputRef> in = {base};
  in.insert(in.end(), adapters.begin(), adapters.end());
  FuseParams p;
  p.inplace = m.fusion == Fusion::kInplace;
  p.quantizer = m.quantizer;
  if (!p.inplace) {
    // With bits, one streaming pass fuses and quantizes and measures how
    // much of the adapters' delta the bits keep: no float model is written
    // to the cache and read back (declare a float target to get one).
    p.dtype = m.dtype.value_or("auto");
    p.bits = m.bits;
    p.group_size = m.group_size;
  }
  const int fuse = x.add_step("fuse", p.to_json(), in, "fuse");
  const bool quantizes = p.inplace || p.bits;
  return std::make_pair(InputRef{"model", "", fuse}, quantizes ? fuse : -1);
}

// format: gguf / hf: the float model (or the base itself) exported. A GGUF
// export of fused adapters reads the base and adapters instead of a fused
// model: it fuses them in its own streaming pass (no float model is written
// to the cache and read back; the bytes are the same) and measures the
// delta retention of its quantization, so its report holds the figure.
Result<std::pair<InputRef, int>> expand_export(const ModelSpec& m, TargetExpansion& x, const InputRef& model,
                                               const InputRef& base, const std::vector<InputRef>& adapters) {
  ExportParams p;
  p.format = model_format_name(m.format);
  p.gguf_type = m.gguf_type;
  const bool one_pass = m.format == ModelFormat::kGguf && !adapters.empty();  // fuses and measures
  std::vector<InputRef> in;
  if (!one_pass) {
    in.push_back(model);
  } else {
    p.fuse_dtype = m.dtype.value_or("auto");
    in.push_back(base);
    in.insert(in.end(), adapters.begin(), adapters.end());
  }
  const int step = x.add_step("export", p.to_json(), in, "export");
  return std::make_pair(InputRef{"model", "", step}, one_pass ? step : -1);
}

}  // namespace

const char* model_format_name(ModelFormat f) {
  switch (f) {
    case ModelFormat::kMlx:
      return "mlx";
    case ModelFormat::kGguf:
      return "gguf";
    case ModelFormat::kHf:
      return "hf";
  }
  return "?";
}

const char* fusion_name(Fusion f) {
  switch (f) {
    case Fusion::kDequantize:
      return "dequantize";
    case Fusion::kInplace:
      return "inplace";
    case Fusion::kNone:
      return "none";
  }
  return "?";
}

std::vector<std::string> ModelTargetKind::keys() const {
  std::vector<std::string> keys = {"base", "adapters", "candidates", "format", "gguf_type"};
  keys.insert(keys.end(), kDefaultKeys.begin(), kDefaultKeys.end());
  return keys;
}

std::vector<std::string> ModelTargetKind::default_keys() const { return kDefaultKeys; }

Result<std::shared_ptr<const TargetSpec>> ModelTargetKind::parse(TargetReader& r) const {
  auto m = std::make_shared<ModelSpec>();
  MB_ASSIGN(m->base, r.reference("base"));
  if (r.has_own("adapters")) {
    MB_ASSIGN(m->adapters, r.reference_list("adapters"));
  }
  MB_TRY(parse_format(r, *m));
  MB_TRY(parse_fusion(r, *m));
  MB_TRY(parse_bits(r, *m));
  MB_TRY(parse_dtype(r, *m));
  MB_ASSIGN(m->gate, parse_gate(r));
  MB_TRY(check_export(r, *m));
  MB_TRY(check_combination(r, *m));
  return std::shared_ptr<const TargetSpec>(std::move(m));
}

Status ModelSpec::expand(TargetExpansion& x) const {
  MB_ASSIGN(InputRef base_in, x.resolve(base, "base"));
  std::vector<InputRef> adapter_in;
  for (size_t i = 0; i < adapters.size(); ++i) {
    MB_ASSIGN(InputRef a, x.resolve(adapters[i], fmt::format("adapter.{}", i)));
    adapter_in.push_back(std::move(a));
  }
  std::optional<double> min_retention = min_delta_retention;
  if (gate && gate->min_delta_retention) min_retention = gate->min_delta_retention;
  if (auto_bits) return expand_bits_search(*this, x, base_in, adapter_in, min_retention);
  InputRef artifact = base_in;
  artifact.role = "model";
  int retention_step = -1;
  if (!adapter_in.empty() && fusion == Fusion::kNone) {
    x.plan().runtime_inputs = adapter_in;
  } else if (!adapter_in.empty() && format != ModelFormat::kGguf) {
    MB_ASSIGN(std::tie(artifact, retention_step), expand_fusion(*this, x, base_in, adapter_in));
  } else if (bits || dtype) {
    QuantizeParams p{bits, group_size, quantizer, dtype.value_or("auto")};
    artifact = InputRef{"model", "", x.add_step("quantize", p.to_json(), {artifact}, "quantize")};
  }
  if (auto_gguf()) return expand_gguf_search(*this, x, artifact, base_in, adapter_in, min_retention);
  if (format != ModelFormat::kMlx) {
    MB_ASSIGN(std::tie(artifact, retention_step), expand_export(*this, x, artifact, base_in, adapter_in));
  }
  x.plan().artifact = artifact;
  if (retention_step >= 0) {
    x.plan().marks[kRetentionMark] = retention_step;
    if (min_retention) MB_TRY(x.add_check(retention_step, kDeltaRetention, *min_retention));
  }
  if (!gate) return {};
  MB_TRY(expand_gate(x, *gate, artifact, x.plan().runtime_inputs));
  const std::vector<InputRef> runtime = x.plan().runtime_inputs;
  MB_ASSIGN(FidelityStep f, add_fidelity_step(x, *gate, base_in, adapter_in, artifact, runtime, "fidelity"));
  if (f.step >= 0) {
    x.plan().marks[kFidelityMark] = f.step;
    x.plan().checks.insert(x.plan().checks.end(), f.checks.begin(), f.checks.end());
    x.order_after(x.plan().marks[kGateMark], f.step);
  }
  return {};
}

Status ModelSpec::preflight(const FileSystem& fs, const SourcePathFn& source_path) const {
  ModelPreflight p;
  // The fidelity steps run the native engine whatever the gate's runner.
  p.needs_engine =
      gate && (gate->runner.value("type", "native") == "native" || gate->max_mean_kl || gate->min_top1_agreement);
  p.needs_gguf = format == ModelFormat::kGguf;
  p.needs_hf = format == ModelFormat::kHf;
  return preflight_model(fs, source_path, base, p);
}

}  // namespace mb
