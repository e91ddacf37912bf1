#include "tensors/gguf_metadata.h"

#include <cmath>
#include <numbers>
#include <optional>

#include "inference/tokenizer.h"
#include "inference/tokenizer_document.h"
#include "tensors/gguf_names.h"

// Keys, types and sources: docs/formats/gguf.md, "Architecture metadata" and
// "Tokenizer metadata".
namespace mb {
namespace {

using Json = nlohmann::ordered_json;

constexpr int32_t kTokenNormal = 1;
constexpr int32_t kTokenControl = 3;
constexpr int32_t kTokenUserDefined = 4;
constexpr int32_t kTokenUnused = 5;
constexpr uint32_t kQuantizationVersion = 2;  // ggml's GGML_QNT_VERSION

bool starts_ends(const std::string& s, std::string_view head, std::string_view tail) {
  return s.size() >= head.size() + tail.size() && s.compare(0, head.size(), head) == 0 &&
         s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

Result<std::string> read_required(const FileSystem& fs, const fs::path& path) {
  Result<std::string> text = fs.read_file(path);
  if (!text) {
    if (text.error().code == Errc::kNotFound)
      return Error{Errc::kInvalidInput, path.string(), "missing: a GGUF export needs this file"};
    return text.error();
  }
  return text;
}

// " " inside a part of a [left, right] merge is stored as U+0120, the way
// llama.cpp's converter writes it, so that the pair splits at the one space.
std::string merge_part(const std::string& part) {
  std::string out;
  for (char c : part) {
    if (c == ' ')
      out += "\xc4\xa0";
    else
      out += c;
  }
  return out;
}

Result<std::vector<std::string>> merges_of(const inference::TokenizerDocument& doc, const std::string& where) {
  std::vector<std::string> merges;
  merges.reserve(doc.merges.size());
  for (size_t i = 0; i < doc.merges.size(); ++i) {
    const inference::TokenizerDocument::Merge& m = doc.merges[i];
    switch (m.kind) {
      case inference::TokenizerDocument::MergeKind::kLegacy:
        merges.push_back(m.left);
        break;
      case inference::TokenizerDocument::MergeKind::kPair:
        merges.push_back(merge_part(m.left) + " " + merge_part(m.right));
        break;
      default:
        return Error{Errc::kInvalidInput, where, fmt::format("model.merges[{}]: expected a string or a pair", i)};
    }
  }
  return merges;
}

// Whether the post-processor puts the BOS token first (Llama 3's
// TemplateProcessing), when tokenizer_config.json does not say.
std::optional<bool> post_processor_adds_bos(const nlohmann::json& root, const std::optional<std::string>& bos) {
  auto pp = root.find("post_processor");
  if (pp == root.end() || !pp->is_object()) return std::nullopt;
  std::vector<nlohmann::json> list;
  if (auto it = pp->find("processors"); it != pp->end() && it->is_array())
    list.assign(it->begin(), it->end());
  else
    list.push_back(*pp);
  std::optional<bool> adds;
  for (const nlohmann::json& p : list) {
    if (!p.is_object()) continue;
    std::string type = p.value("type", "");
    if (type == "RobertaProcessing") adds = true;
    if (type != "TemplateProcessing") continue;
    auto single = p.find("single");
    if (single == p.end() || !single->is_array() || single->size() < 2 || !(*single)[0].is_object()) continue;
    auto special = (*single)[0].find("SpecialToken");
    if (special == (*single)[0].end() || !special->is_object()) continue;
    auto id = special->find("id");
    if (id == special->end() || !id->is_string()) continue;
    adds = bos && id->get<std::string>() == *bos;
  }
  return adds;
}

// config.json's `key` when it is a non-negative integer below the vocabulary.
std::optional<int32_t> config_token_id(const Json& config, const char* key, int64_t vocab) {
  auto it = config.find(key);
  if (it == config.end() || !it->is_number_integer()) return std::nullopt;
  int64_t v = it->get<int64_t>();
  if (v < 0 || v >= vocab) return std::nullopt;
  return static_cast<int32_t>(v);
}

struct TokenLists {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
};

Result<TokenLists> token_lists(const inference::Tokenizer& tok, const GgufModelFacts& facts, const std::string& where) {
  if (tok.vocab_size() > facts.vocab_size)
    return Error{
        Errc::kInvalidInput, where,
        fmt::format("token id {} is beyond config.json's vocab_size {}", tok.vocab_size() - 1, facts.vocab_size)};
  std::vector<const inference::AddedToken*> added(static_cast<size_t>(facts.vocab_size), nullptr);
  for (const inference::AddedToken& a : tok.added_tokens()) added[static_cast<size_t>(a.id)] = &a;
  TokenLists out;
  out.tokens.reserve(static_cast<size_t>(facts.vocab_size));
  out.types.reserve(static_cast<size_t>(facts.vocab_size));
  for (int32_t id = 0; id < facts.vocab_size; ++id) {
    const std::string& text = tok.id_to_token(id);
    if (text.empty()) {
      out.tokens.push_back(fmt::format("[PAD{}]", id));
      out.types.push_back(kTokenUnused);
    } else if (added[static_cast<size_t>(id)] != nullptr) {
      out.types.push_back(gguf_added_token_type(text, added[static_cast<size_t>(id)]->special));
      out.tokens.push_back(text);
    } else {
      out.tokens.push_back(text);
      out.types.push_back(kTokenNormal);
    }
  }
  return out;
}

}  // namespace

int32_t gguf_added_token_type(const std::string& content, bool special) {
  bool looks_special = content == "<pad>" || content == "<mask>" || content == "<2mass>" || content == "[@BOS@]" ||
                       starts_ends(content, "<|", "|>") || starts_ends(content, "<\xef\xbd\x9c", "\xef\xbd\x9c>") ||
                       starts_ends(content, "<unused", ">");
  return special || looks_special ? kTokenControl : kTokenUserDefined;
}

Result<GgufModelFacts> gguf_model_facts(const Json& config, const std::string& where) {
  GgufModelFacts facts;
  MB_ASSIGN(facts.config, inference::parse_model_config(config.dump(), where));
  facts.arch = inference::architecture_name(facts.config.arch);
  if (!gguf_arch_supported(facts.arch))
    return Error{Errc::kUnsupported, where, fmt::format("architecture {} has no GGUF mapping", facts.arch)};
  facts.has_head_dim = config.contains("head_dim") && config["head_dim"].is_number_integer();
  facts.vocab_size = facts.config.vocab_size;
  if (facts.vocab_size <= 0) return Error{Errc::kInvalidInput, where, "vocab_size: must be a positive integer"};
  return facts;
}

void add_gguf_arch_metadata(GgufMetadata& md, const GgufModelFacts& facts, const std::string& name,
                            GgufFileType file_type, bool any_quantized) {
  const inference::ModelConfig& c = facts.config;
  const std::string a = facts.arch + ".";
  md.add_string("general.architecture", facts.arch);
  md.add_string("general.name", name);
  md.add_u32(a + "block_count", static_cast<uint32_t>(c.num_layers));
  md.add_u32(a + "context_length", static_cast<uint32_t>(c.max_position_embeddings));
  md.add_u32(a + "embedding_length", static_cast<uint32_t>(c.hidden_size));
  md.add_u32(a + "feed_forward_length", static_cast<uint32_t>(c.intermediate_size));
  md.add_u32(a + "attention.head_count", static_cast<uint32_t>(c.num_heads));
  md.add_u32(a + "attention.head_count_kv", static_cast<uint32_t>(c.num_kv_heads));
  md.add_f32(a + "rope.freq_base", static_cast<float>(c.rope.theta));
  md.add_f32(a + "attention.layer_norm_rms_epsilon", c.rms_norm_eps);
  if (facts.has_head_dim) {
    md.add_u32(a + "attention.key_length", static_cast<uint32_t>(c.head_dim));
    md.add_u32(a + "attention.value_length", static_cast<uint32_t>(c.head_dim));
  }
  if (c.rope.type == inference::RopeConfig::Type::kLinear) {
    md.add_string(a + "rope.scaling.type", "linear");
    md.add_f32(a + "rope.scaling.factor", static_cast<float>(c.rope.factor));
  }
  if (facts.arch == "llama") {
    md.add_u32(a + "vocab_size", static_cast<uint32_t>(facts.vocab_size));
    md.add_u32(a + "rope.dimension_count", static_cast<uint32_t>(c.head_dim));
  }
  md.add_u32("general.file_type", gguf_file_type_id(file_type));
  if (any_quantized) md.add_u32("general.quantization_version", kQuantizationVersion);
  md.add_u32("general.alignment", static_cast<uint32_t>(kGgufAlignment));
}

Status add_gguf_tokenizer_metadata(GgufMetadata& md, const FileSystem& fs, const fs::path& model_dir,
                                   const GgufModelFacts& facts, const Json& config) {
  const fs::path tok_path = model_dir / "tokenizer.json";
  const fs::path cfg_path = model_dir / "tokenizer_config.json";
  MB_ASSIGN(std::string tok_text, read_required(fs, tok_path));
  MB_ASSIGN(std::string cfg_text, read_required(fs, cfg_path));
  MB_ASSIGN(inference::Tokenizer tok, inference::Tokenizer::from_json(tok_text, tok_path.string()));
  MB_ASSIGN(inference::TokenizerConfig tc, inference::parse_tokenizer_config(tok, cfg_text, cfg_path.string()));
  // The merges exactly as written (the Tokenizer keeps them as id pairs).
  MB_ASSIGN(inference::TokenizerDocument doc, inference::read_tokenizer_document(tok_text, tok_path.string()));
  MB_ASSIGN(std::vector<std::string> merges, merges_of(doc, tok_path.string()));
  MB_ASSIGN(TokenLists lists, token_lists(tok, facts, tok_path.string()));

  md.add_string("tokenizer.ggml.model", "gpt2");
  md.add_string("tokenizer.ggml.pre", facts.arch == "llama" ? "llama-bpe" : "qwen2");
  md.add_strings("tokenizer.ggml.tokens", std::move(lists.tokens));
  md.add_i32s("tokenizer.ggml.token_type", std::move(lists.types));
  if (!merges.empty()) md.add_strings("tokenizer.ggml.merges", std::move(merges));
  struct Special {
    const char* key;
    std::optional<int32_t> id;
    const char* config_key;
  };
  for (Special s : {Special{"tokenizer.ggml.bos_token_id", tc.bos, "bos_token_id"},
                    Special{"tokenizer.ggml.eos_token_id", tc.eos, "eos_token_id"},
                    Special{"tokenizer.ggml.padding_token_id", tc.pad, "pad_token_id"}}) {
    std::optional<int32_t> id = s.id && *s.id < facts.vocab_size ? s.id : std::nullopt;
    if (!id) id = config_token_id(config, s.config_key, facts.vocab_size);
    if (id) md.add_u32(s.key, static_cast<uint32_t>(*id));
  }
  // add_bos_token: tokenizer_config.json's when it says, else what the
  // post-processor does (llama.cpp's defaults differ per pre-tokenizer).
  nlohmann::json cfg_json = nlohmann::json::parse(cfg_text, nullptr, false);
  std::optional<bool> add_bos;
  if (cfg_json.is_object() && cfg_json.contains("add_bos_token") && cfg_json["add_bos_token"].is_boolean())
    add_bos = cfg_json["add_bos_token"].get<bool>();
  std::optional<std::string> bos_text;
  if (tc.bos) bos_text = tok.id_to_token(*tc.bos);
  if (!add_bos) add_bos = post_processor_adds_bos(doc.root, bos_text);
  if (add_bos) md.add_bool("tokenizer.ggml.add_bos_token", *add_bos);
  if (cfg_json.is_object() && cfg_json.contains("add_eos_token") && cfg_json["add_eos_token"].is_boolean())
    md.add_bool("tokenizer.ggml.add_eos_token", cfg_json["add_eos_token"].get<bool>());
  std::string chat_template = tc.chat_template;
  if (chat_template.empty()) {
    Result<std::string> jinja = fs.read_file(model_dir / "chat_template.jinja");
    if (jinja) chat_template = jinja.value();
  }
  if (!chat_template.empty()) md.add_string("tokenizer.chat_template", chat_template);
  return {};
}

Result<GgufMetadata> build_gguf_metadata(const FileSystem& fs, const fs::path& model_dir, const Json& config,
                                         const std::string& name, GgufFileType file_type, bool any_quantized) {
  MB_ASSIGN(GgufModelFacts facts, gguf_model_facts(config, (model_dir / "config.json").string()));
  GgufMetadata md;
  add_gguf_arch_metadata(md, facts, name, file_type, any_quantized);
  MB_TRY(add_gguf_tokenizer_metadata(md, fs, model_dir, facts, config));
  return md;
}

std::vector<float> gguf_rope_freqs(const GgufModelFacts& facts) {
  const inference::RopeConfig& rope = facts.config.rope;
  if (facts.arch != "llama" || rope.type != inference::RopeConfig::Type::kLlama3) return {};
  // float32 throughout, in the converter's order of operations (torch
  // evaluates `scalar / tensor` as reciprocal(tensor) * scalar).
  const int dim = facts.config.head_dim;
  const float factor = static_cast<float>(rope.factor);
  const float low = static_cast<float>(rope.low_freq_factor), high = static_cast<float>(rope.high_freq_factor);
  const float old_len = static_cast<float>(rope.original_max_positions);
  const float low_wavelen = old_len / low, high_wavelen = old_len / high;
  std::vector<float> out;
  for (int i = 0; i < dim; i += 2) {
    float freq = 1.0f / std::pow(static_cast<float>(rope.theta), static_cast<float>(i) / static_cast<float>(dim));
    float wavelen = (1.0f / freq) * static_cast<float>(2 * std::numbers::pi);
    if (wavelen < high_wavelen) {
      out.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      out.push_back(factor);
    } else {
      float smooth = ((1.0f / wavelen) * old_len - low) / (high - low);
      out.push_back(1.0f / ((1.0f - smooth) / factor + smooth));
    }
  }
  return out;
}

}  // namespace mb
