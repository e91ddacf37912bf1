#include "inference/gguf_tokenizer.h"

#include <fmt/format.h>

#include "inference/tokenizer_document.h"

namespace mb::inference {

using OJson = nlohmann::ordered_json;
using Json = nlohmann::json;

namespace {

// Largest vocabulary accepted (as tokenizer.json's loader: ids < 2^21).
constexpr size_t kMaxTokens = size_t{1} << 21;

// ggml's token types (docs/formats/gguf.md).
constexpr int64_t kTypeControl = 3;
constexpr int64_t kTypeUserDefined = 4;
constexpr int64_t kTypeUnused = 5;

// The split regexes of the pre-tokenizers llama.cpp names: Qwen2's (one
// digit per piece) and Llama 3's (up to three digits).
constexpr const char* kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

class Reader {
 public:
  Reader(const OJson& metadata, const std::string& where) : m_md(metadata), m_where(where) {}

  template <typename... Args>
  Error bad(const char* key, fmt::format_string<Args...> f, Args&&... args) const {
    return Error{Errc::kCorrupt, m_where, fmt::format("{}: {}", key, fmt::format(f, std::forward<Args>(args)...))};
  }
  template <typename... Args>
  Error unsupported(const char* key, fmt::format_string<Args...> f, Args&&... args) const {
    return Error{Errc::kUnsupported, m_where, fmt::format("{}: {}", key, fmt::format(f, std::forward<Args>(args)...))};
  }
  const std::string& where() const { return m_where; }

  const OJson* find(const char* key) const {
    auto it = m_md.find(key);
    return it == m_md.end() ? nullptr : &*it;
  }

  Result<std::string> string(const char* key, bool required) const {
    const OJson* v = find(key);
    if (!v) {
      if (required) return bad(key, "missing");
      return std::string();
    }
    if (!v->is_string()) return bad(key, "expected a string, got {}", v->type_name());
    return v->get<std::string>();
  }

  // An array of strings (empty when absent and not required).
  Result<std::vector<std::string>> strings(const char* key, bool required) const {
    std::vector<std::string> out;
    const OJson* v = find(key);
    if (!v) {
      if (required) return bad(key, "missing");
      return out;
    }
    if (!v->is_array()) return bad(key, "expected an array of strings, got {}", v->type_name());
    out.reserve(v->size());
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string()) return bad(key, "element {} is {}, not a string", i, (*v)[i].type_name());
      out.push_back((*v)[i].get<std::string>());
    }
    return out;
  }

  // An optional token id below `n_tokens`.
  Result<std::optional<int32_t>> token_id(const char* key, size_t n_tokens) const {
    const OJson* v = find(key);
    if (!v) return std::optional<int32_t>();
    if (!v->is_number_unsigned() && !(v->is_number_integer() && v->get<int64_t>() >= 0))
      return bad(key, "expected a token id, got {}", v->dump());
    const uint64_t id = v->get<uint64_t>();
    if (id >= n_tokens) return bad(key, "token id {} is not below the vocabulary size {}", id, n_tokens);
    return std::optional<int32_t>(static_cast<int32_t>(id));
  }

 private:
  const OJson& m_md;
  const std::string& m_where;
};

// normalizer and pre_tokenizer of the family `pre` names, as its
// tokenizer.json has them.
Result<std::pair<Json, Json>> pre_tokenizer(const Reader& r, const std::string& pre) {
  const Json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
  auto split = [&](const char* regex) {
    Json step = {{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}};
    return Json{{"type", "Sequence"}, {"pretokenizers", Json::array({step, byte_level})}};
  };
  if (pre == "qwen2") return std::pair<Json, Json>(Json{{"type", "NFC"}}, split(kQwen2Regex));
  if (pre == "llama-bpe" || pre == "llama3") return std::pair<Json, Json>(Json(nullptr), split(kLlama3Regex));
  if (pre.empty() || pre == "default" || pre == "gpt2")
    return std::pair<Json, Json>(Json(nullptr), Json{{"type", "ByteLevel"}, {"add_prefix_space", false}});
  return r.unsupported("tokenizer.ggml.pre", "pre-tokenizer \"{}\" is not supported (qwen2, llama-bpe, gpt2)", pre);
}

// tokenizer.ggml.token_type, one per token (all normal when absent).
Result<std::vector<int64_t>> token_types(const Reader& r, size_t n_tokens) {
  const char* key = "tokenizer.ggml.token_type";
  std::vector<int64_t> types(n_tokens, 1);
  const OJson* v = r.find(key);
  if (!v) return types;
  if (!v->is_array()) return r.bad(key, "expected an array of integers, got {}", v->type_name());
  if (v->size() != n_tokens) return r.bad(key, "has {} entries but tokenizer.ggml.tokens has {}", v->size(), n_tokens);
  for (size_t i = 0; i < n_tokens; ++i) {
    if (!(*v)[i].is_number_integer()) return r.bad(key, "element {} is {}, not an integer", i, (*v)[i].type_name());
    types[i] = (*v)[i].get<int64_t>();
  }
  return types;
}

// The tokenizer.json the metadata stands for, as a document.
Result<TokenizerDocument> document(const Reader& r) {
  MB_ASSIGN(std::string model, r.string("tokenizer.ggml.model", true));
  if (model != "gpt2")
    return r.unsupported("tokenizer.ggml.model", "\"{}\" is not supported (only byte-level BPE, \"gpt2\")", model);
  MB_ASSIGN(std::vector<std::string> tokens, r.strings("tokenizer.ggml.tokens", true));
  if (tokens.empty() || tokens.size() > kMaxTokens)
    return r.bad("tokenizer.ggml.tokens", "{} tokens (expected 1..{})", tokens.size(), kMaxTokens);
  MB_ASSIGN(std::vector<int64_t> types, token_types(r, tokens.size()));
  MB_ASSIGN(std::vector<std::string> merges, r.strings("tokenizer.ggml.merges", false));
  MB_ASSIGN(std::string pre, r.string("tokenizer.ggml.pre", false));
  MB_ASSIGN(auto steps, pre_tokenizer(r, pre));

  TokenizerDocument doc;
  Json added = Json::array();
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (types[id] == kTypeUnused) continue;  // fillers for ids without a token
    if (types[id] == kTypeControl || types[id] == kTypeUserDefined) {
      added.push_back(
          {{"id", id}, {"content", tokens[id]}, {"special", types[id] == kTypeControl}, {"normalized", false}});
    } else {
      doc.vocab.emplace_back(tokens[id], static_cast<int64_t>(id));
    }
  }
  for (std::string& m : merges) doc.merges.push_back({TokenizerDocument::MergeKind::kLegacy, std::move(m), {}});
  doc.root = {{"model", {{"type", "BPE"}, {"vocab", Json::object()}, {"merges", Json::array()}}},
              {"added_tokens", std::move(added)},
              {"normalizer", std::move(steps.first)},
              {"pre_tokenizer", std::move(steps.second)},
              {"decoder", {{"type", "ByteLevel"}}}};
  return doc;
}

// The loader names tokenizer.json keys; say which metadata they came from.
Error in_gguf_terms(Error e) {
  for (const auto& [json_key, gguf_key] :
       {std::pair<std::string_view, std::string_view>{"model.merges", "tokenizer.ggml.merges"},
        {"model.vocab", "tokenizer.ggml.tokens"},
        {"added_tokens", "tokenizer.ggml.tokens (control or user-defined)"}})
    if (e.message.starts_with(json_key)) {
      e.message = std::string(gguf_key) + e.message.substr(json_key.size());
      break;
    }
  return e;
}

}  // namespace

Result<GgufTokenizer> gguf_tokenizer(const OJson& metadata, const std::string& where) {
  Reader r(metadata, where);
  MB_ASSIGN(TokenizerDocument doc, document(r));
  // document() checked that this is a non-empty array.
  const size_t vocab = metadata.at("tokenizer.ggml.tokens").size();
  Result<Tokenizer> tok = tokenizer_from_document(doc, where);
  if (!tok.ok()) return in_gguf_terms(tok.error());
  GgufTokenizer out{std::move(tok).value(), {}, {}};
  MB_ASSIGN(out.config.bos, r.token_id("tokenizer.ggml.bos_token_id", vocab));
  MB_ASSIGN(out.config.eos, r.token_id("tokenizer.ggml.eos_token_id", vocab));
  MB_ASSIGN(out.config.pad, r.token_id("tokenizer.ggml.padding_token_id", vocab));
  if (const OJson* v = r.find("tokenizer.ggml.add_bos_token")) {
    if (!v->is_boolean()) return r.bad("tokenizer.ggml.add_bos_token", "expected a boolean, got {}", v->type_name());
    out.config.add_bos_token = v->get<bool>();
  }
  MB_ASSIGN(out.config.chat_template, r.string("tokenizer.chat_template", false));
  out.end_of_generation = end_of_generation_ids(out.tokenizer, out.config, {});
  return out;
}

}  // namespace mb::inference
