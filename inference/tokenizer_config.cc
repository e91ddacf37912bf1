// tokenizer_config.json, config.json and generation_config.json: which
// tokens begin and end a sequence. docs/formats/tokenizer.md §4.
#include <nlohmann/json.hpp>
#include <set>

#include "inference/tokenizer.h"

namespace mb::inference {

using Json = nlohmann::json;

namespace {

Result<Json> parse_object(std::string_view text, std::string_view where) {
  Json root;
  try {
    root = Json::parse(text);
  } catch (const Json::exception& e) {
    return make_error(Errc::kInvalidInput, std::string(where), "not valid JSON: {}", e.what());
  }
  if (!root.is_object()) return make_error(Errc::kInvalidInput, std::string(where), "the top level must be an object");
  return root;
}

// The text of a `*_token` entry: a string, {"content": "..."} (the
// AddedToken form older transformers write), or null/absent.
Result<std::optional<std::string>> token_text(const Json& root, const char* key, std::string_view where) {
  auto it = root.find(key);
  if (it == root.end() || it->is_null()) return std::optional<std::string>();
  if (it->is_string()) return std::optional<std::string>(it->get<std::string>());
  if (it->is_object()) {
    auto content = it->find("content");
    if (content != it->end() && content->is_string()) return std::optional<std::string>(content->get<std::string>());
  }
  return make_error(Errc::kInvalidInput, std::string(where), "{}: expected a string, {{\"content\": ...}} or null",
                    key);
}

// Reads an optional file; an absent one is std::nullopt, not an error.
Result<std::optional<std::string>> read_optional(const FileSystem& fs, const fs::path& path) {
  Result<std::string> text = fs.read_file(path);
  if (!text.ok()) {
    if (text.error().code == Errc::kNotFound) return std::optional<std::string>();
    return text.error();
  }
  return std::optional<std::string>(std::move(text).value());
}

}  // namespace

Result<TokenizerConfig> parse_tokenizer_config(const Tokenizer& tokenizer, std::string_view json_text,
                                               std::string_view where) {
  MB_ASSIGN(Json root, parse_object(json_text, where));
  TokenizerConfig config;
  if (auto it = root.find("add_bos_token"); it != root.end() && !it->is_null()) {
    if (!it->is_boolean())
      return make_error(Errc::kInvalidInput, std::string(where), "add_bos_token: expected a boolean");
    config.add_bos_token = it->get<bool>();
  }
  struct Slot {
    const char* key;
    std::optional<int32_t>* id;
  };
  for (Slot slot : {Slot{"bos_token", &config.bos}, Slot{"eos_token", &config.eos}, Slot{"pad_token", &config.pad}}) {
    MB_ASSIGN(std::optional<std::string> text, token_text(root, slot.key, where));
    if (!text) continue;
    *slot.id = tokenizer.token_id(*text);
    // A wrong eos means a generation that never stops: refuse it. bos and
    // pad are informational, so an unknown one is only left unset.
    if (!*slot.id && std::string_view(slot.key) == "eos_token") {
      return make_error(Errc::kInvalidInput, std::string(where), "eos_token: \"{}\" is not a token of tokenizer.json",
                        *text);
    }
  }
  if (auto it = root.find("chat_template"); it != root.end() && !it->is_null()) {
    if (it->is_string()) {
      config.chat_template = it->get<std::string>();
    } else if (it->is_array()) {
      // Newer files: [{"name": "default", "template": "..."}, {"name": "tool_use", ...}].
      for (const Json& entry : *it) {
        auto name = entry.is_object() ? entry.find("name") : entry.end();
        auto tmpl = entry.is_object() ? entry.find("template") : entry.end();
        if (name != entry.end() && tmpl != entry.end() && name->is_string() && tmpl->is_string() &&
            name->get<std::string>() == "default") {
          config.chat_template = tmpl->get<std::string>();
        }
      }
    } else {
      return make_error(Errc::kInvalidInput, std::string(where), "chat_template: expected a string or a list");
    }
  }
  return config;
}

Result<std::vector<int32_t>> parse_eos_token_ids(std::string_view json_text, std::string_view where) {
  MB_ASSIGN(Json root, parse_object(json_text, where));
  std::vector<int32_t> ids;
  auto it = root.find("eos_token_id");
  if (it == root.end() || it->is_null()) return ids;
  auto add = [&](const Json& v) -> Status {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) {
      return make_error(Errc::kInvalidInput, std::string(where), "eos_token_id: expected token ids, got {}", v.dump());
    }
    ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
    return Status();
  };
  if (it->is_array()) {
    for (const Json& v : *it) MB_TRY(add(v));
  } else {
    MB_TRY(add(*it));
  }
  return ids;
}

std::vector<int32_t> end_of_generation_ids(const Tokenizer& tokenizer, const TokenizerConfig& config,
                                           std::span<const int32_t> extra_ids) {
  std::set<int32_t> ids(extra_ids.begin(), extra_ids.end());
  if (config.eos) ids.insert(*config.eos);
  for (const char* name : {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"}) {
    std::optional<int32_t> id = tokenizer.token_id(name);
    if (id && tokenizer.is_added(*id)) ids.insert(*id);
  }
  return {ids.begin(), ids.end()};
}

Result<TokenizerConfig> load_tokenizer_config(const FileSystem& fs, const fs::path& model_dir,
                                              const Tokenizer& tokenizer) {
  fs::path path = model_dir / "tokenizer_config.json";
  MB_ASSIGN(std::optional<std::string> text, read_optional(fs, path));
  if (!text) return TokenizerConfig{};
  return parse_tokenizer_config(tokenizer, *text, path.string());
}

Result<std::vector<int32_t>> load_end_of_generation_ids(const FileSystem& fs, const fs::path& model_dir,
                                                        const Tokenizer& tokenizer) {
  MB_ASSIGN(TokenizerConfig config, load_tokenizer_config(fs, model_dir, tokenizer));
  std::vector<int32_t> extra;
  for (const char* name : {"config.json", "generation_config.json"}) {
    fs::path path = model_dir / name;
    MB_ASSIGN(std::optional<std::string> text, read_optional(fs, path));
    if (!text) continue;
    MB_ASSIGN(std::vector<int32_t> ids, parse_eos_token_ids(*text, path.string()));
    extra.insert(extra.end(), ids.begin(), ids.end());
  }
  return end_of_generation_ids(tokenizer, config, extra);
}

}  // namespace mb::inference
