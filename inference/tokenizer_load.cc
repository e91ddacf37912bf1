// Parsing of tokenizer.json into Tokenizer::Impl, and the helpers that read
// tokenizer_config.json, config.json and generation_config.json.
//
// Every error names the file and the JSON key ("tokenizer.json:
// model.merges[12]: token "ab" not in vocab"). Nothing here throws: JSON
// parse errors are caught where the text is parsed, and values are read only
// after their type was checked, so hostile files (see tests/fuzz) fail
// cleanly.
#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "inference/tokenizer.h"
#include "inference/tokenizer_document.h"
#include "inference/tokenizer_impl.h"
#include "inference/tokenizer_unicode.h"

namespace mb::inference {

using Json = nlohmann::json;

namespace {

// Largest token id accepted: well above every real vocabulary (~260k), low
// enough that a hostile id cannot make us allocate gigabytes.
constexpr int64_t kMaxTokenId = (int64_t{1} << 21) - 1;

// GPT-2's pre-tokenizer regex, used by ByteLevel when use_regex is true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

const Json* member(const Json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string type_name(const Json& j) { return j.type_name(); }

}  // namespace

// Builds a Tokenizer::Impl from parsed JSON. A class (not free functions) so
// it can be Tokenizer's friend and reach the private constructor.
class TokenizerLoader {
 public:
  TokenizerLoader(const TokenizerDocument& doc, std::string_view where)
      : m_doc(doc), m_root(doc.root), m_where(where) {}

  Result<Tokenizer> load() {
    if (!m_root.is_object()) return bad("", "the top level must be an object, not {}", type_name(m_root));
    m_impl = std::make_unique<Tokenizer::Impl>();
    MB_TRY(load_model());
    MB_TRY(load_added_tokens());
    MB_TRY(load_normalizer());
    MB_TRY(load_pre_tokenizer());
    MB_TRY(check_decoder());
    finish_tables();
    return Tokenizer(std::move(m_impl));
  }

 private:
  template <typename... Args>
  Error bad(std::string_view key, fmt::format_string<Args...> f, Args&&... args) const {
    return error_at(Errc::kInvalidInput, key, fmt::format(f, std::forward<Args>(args)...));
  }
  template <typename... Args>
  Error unsupported(std::string_view key, fmt::format_string<Args...> f, Args&&... args) const {
    return error_at(Errc::kUnsupported, key, fmt::format(f, std::forward<Args>(args)...));
  }
  Error error_at(Errc code, std::string_view key, std::string message) const {
    return Error{code, std::string(m_where), key.empty() ? message : fmt::format("{}: {}", key, message)};
  }

  // Optional boolean member: `fallback` when absent or null.
  Result<bool> flag(const Json& object, const char* key, std::string_view path, bool fallback) const {
    const Json* v = member(object, key);
    if (v == nullptr || v->is_null()) return fallback;
    if (!v->is_boolean()) return bad(fmt::format("{}.{}", path, key), "expected true or false, got {}", type_name(*v));
    return v->get<bool>();
  }

  Result<int32_t> token_id_value(const Json& v, std::string_view path) const {
    if (!v.is_number_integer()) return bad(path, "expected a token id, got {}", type_name(v));
    int64_t id = v.is_number_unsigned() ? static_cast<int64_t>(std::min<uint64_t>(v.get<uint64_t>(), INT64_MAX))
                                        : v.get<int64_t>();
    if (id < 0 || id > kMaxTokenId) return bad(path, "token id {} out of range 0..{}", id, kMaxTokenId);
    return static_cast<int32_t>(id);
  }

  void set_token(int32_t id, const std::string& token) {
    if (static_cast<size_t>(id) >= m_impl->id_to_token.size()) m_impl->id_to_token.resize(static_cast<size_t>(id) + 1);
    m_impl->id_to_token[id] = token;
  }

  Status load_model() {
    const Json* model = member(m_root, "model");
    if (model == nullptr || !model->is_object()) return bad("model", "missing or not an object");
    const Json& m = *model;
    if (const Json* type = member(m, "type")) {
      if (!type->is_string()) return bad("model.type", "expected a string");
      if (type->get<std::string>() != "BPE") {
        return unsupported("model.type", "\"{}\" is not supported (only byte-level \"BPE\")", type->get<std::string>());
      }
    }
    MB_ASSIGN(bool byte_fallback, flag(m, "byte_fallback", "model", false));
    if (byte_fallback)
      return unsupported("model.byte_fallback", "byte_fallback BPE (SentencePiece style) is not supported");
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      const Json* v = member(m, key);
      if (v != nullptr && !v->is_null() && !(v->is_string() && v->get<std::string>().empty())) {
        return unsupported(fmt::format("model.{}", key), "must be null or \"\" for byte-level BPE");
      }
    }
    if (const Json* dropout = member(m, "dropout"); dropout != nullptr && !dropout->is_null()) {
      if (!dropout->is_number()) return bad("model.dropout", "expected a number or null");
      if (dropout->get<double>() > 0) return unsupported("model.dropout", "BPE dropout is not supported");
    }
    MB_ASSIGN(m_impl->ignore_merges, flag(m, "ignore_merges", "model", false));
    MB_ASSIGN(m_impl->fuse_unk, flag(m, "fuse_unk", "model", false));

    const Json* vocab = member(m, "vocab");
    if (vocab == nullptr || !vocab->is_object()) return bad("model.vocab", "missing or not an object");
    if (!m_doc.vocab_error.empty()) return bad("", "{}", m_doc.vocab_error);
    m_impl->vocab.reserve(m_doc.vocab.size());
    std::vector<bool> used;
    for (const auto& [token, id64] : m_doc.vocab) {
      if (id64 < 0 || id64 > kMaxTokenId) {
        return bad(fmt::format("model.vocab[\"{}\"]", token), "token id {} out of range 0..{}", id64, kMaxTokenId);
      }
      auto id = static_cast<int32_t>(id64);
      if (static_cast<size_t>(id) >= used.size()) used.resize(static_cast<size_t>(id) + 1, false);
      if (used[id]) {
        return bad(fmt::format("model.vocab[\"{}\"]", token), "id {} is also used by \"{}\"", id,
                   m_impl->id_to_token[id]);
      }
      used[id] = true;
      // A repeated key: the later entry wins, as in a JSON object.
      m_impl->vocab.insert_or_assign(token, id);
      set_token(id, token);
    }

    if (const Json* unk = member(m, "unk_token"); unk != nullptr && !unk->is_null()) {
      if (!unk->is_string()) return bad("model.unk_token", "expected a string or null");
      auto it = m_impl->vocab.find(unk->get<std::string>());
      if (it == m_impl->vocab.end())
        return bad("model.unk_token", "token \"{}\" not in vocab", unk->get<std::string>());
      m_impl->unk_id = it->second;
    }
    return load_merges(m);
  }

  Status load_merges(const Json& m) {
    const Json* merges = member(m, "merges");
    if (merges == nullptr || merges->is_null()) return Status();  // a vocabulary of single bytes only
    if (!merges->is_array()) return bad("model.merges", "expected an array, got {}", type_name(*merges));
    m_impl->merges.reserve(m_doc.merges.size());
    int32_t rank = 0;
    std::string_view left, right;
    std::string joined;
    for (size_t i = 0; i < m_doc.merges.size(); ++i) {
      const TokenizerDocument::Merge& entry = m_doc.merges[i];
      auto key = [i] { return fmt::format("model.merges[{}]", i); };
      if (entry.kind == TokenizerDocument::MergeKind::kLegacy) {
        // Legacy form "left right": exactly one space (tokens hold no
        // spaces in byte-level form; Ġ stands for it).
        const std::string& line = entry.left;
        if (line.starts_with("#version")) continue;
        size_t space = line.find(' ');
        if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
          return bad(key(), "\"{}\" is not two tokens separated by one space", line);
        }
        left = std::string_view(line).substr(0, space);
        right = std::string_view(line).substr(space + 1);
      } else if (entry.kind == TokenizerDocument::MergeKind::kPair) {
        left = entry.left;
        right = entry.right;
      } else {
        return bad(key(), "expected \"left right\" or [\"left\", \"right\"]");
      }
      joined.assign(left);
      joined.append(right);
      int32_t ids[3];
      for (int k = 0; k < 3; ++k) {
        std::string_view part = k == 0 ? left : k == 1 ? right : std::string_view(joined);
        auto it = m_impl->vocab.find(part);
        if (it == m_impl->vocab.end()) return bad(key(), "token \"{}\" not in vocab", part);
        ids[k] = it->second;
      }
      // A repeated pair keeps its first (lowest) rank.
      m_impl->merges.emplace(pair_key(ids[0], ids[1]), MergeRule{rank, ids[2]});
      ++rank;
    }
    return Status();
  }

  Status load_added_tokens() {
    const Json* list = member(m_root, "added_tokens");
    if (list == nullptr || list->is_null()) return Status();
    if (!list->is_array()) return bad("added_tokens", "expected an array, got {}", type_name(*list));
    for (size_t i = 0; i < list->size(); ++i) {
      const Json& e = (*list)[i];
      std::string key = fmt::format("added_tokens[{}]", i);
      if (!e.is_object()) return bad(key, "expected an object");
      AddedToken t;
      const Json* id = member(e, "id");
      if (id == nullptr) return bad(key, "missing \"id\"");
      MB_ASSIGN(t.id, token_id_value(*id, key + ".id"));
      const Json* content = member(e, "content");
      if (content == nullptr || !content->is_string() || content->get_ref<const std::string&>().empty()) {
        return bad(key + ".content", "expected a non-empty string");
      }
      t.content = content->get<std::string>();
      MB_ASSIGN(t.special, flag(e, "special", key, false));
      MB_ASSIGN(t.normalized, flag(e, "normalized", key, !t.special));
      MB_ASSIGN(t.lstrip, flag(e, "lstrip", key, false));
      MB_ASSIGN(t.rstrip, flag(e, "rstrip", key, false));
      MB_ASSIGN(bool single_word, flag(e, "single_word", key, false));
      if (single_word) {
        return unsupported(key + ".single_word",
                           "added token \"{}\" needs word-boundary matching, which is not implemented", t.content);
      }
      if (m_impl->added_by_content.count(t.content)) return bad(key + ".content", "\"{}\" is added twice", t.content);
      m_impl->added_by_content.emplace(t.content, t.id);
      m_impl->added.push_back(std::move(t));
    }
    for (size_t i = 0; i < m_impl->added.size(); ++i) {
      const AddedToken& t = m_impl->added[i];
      (t.normalized ? m_impl->normalized_matcher : m_impl->raw_matcher).add(t.content, static_cast<int32_t>(i));
      set_token(t.id, t.content);
    }
    return Status();
  }

  Status load_normalizer() {
    const Json* n = member(m_root, "normalizer");
    if (n == nullptr || n->is_null()) return Status();
    std::vector<std::pair<const Json*, std::string>> steps;
    const Json* type = member(*n, "type");
    if (type != nullptr && type->is_string() && type->get<std::string>() == "Sequence") {
      const Json* list = member(*n, "normalizers");
      if (list == nullptr || !list->is_array()) return bad("normalizer.normalizers", "expected an array");
      for (size_t i = 0; i < list->size(); ++i)
        steps.emplace_back(&(*list)[i], fmt::format("normalizer.normalizers[{}]", i));
    } else {
      steps.emplace_back(n, "normalizer");
    }
    for (const auto& [step, key] : steps) {
      const Json* t = member(*step, "type");
      if (t == nullptr || !t->is_string()) return bad(key + ".type", "missing or not a string");
      if (t->get<std::string>() != "NFC") {
        return unsupported(key + ".type", "normalizer \"{}\" is not supported (only NFC)", t->get<std::string>());
      }
      m_impl->nfc = true;
    }
    return Status();
  }

  Status load_pre_tokenizer() {
    const Json* p = member(m_root, "pre_tokenizer");
    if (p == nullptr || p->is_null()) {
      return unsupported("pre_tokenizer", "is null; a byte-level BPE needs a ByteLevel pre-tokenizer");
    }
    std::vector<std::pair<const Json*, std::string>> steps;
    const Json* type = member(*p, "type");
    if (type != nullptr && type->is_string() && type->get<std::string>() == "Sequence") {
      const Json* list = member(*p, "pretokenizers");
      if (list == nullptr || !list->is_array()) return bad("pre_tokenizer.pretokenizers", "expected an array");
      for (size_t i = 0; i < list->size(); ++i) {
        steps.emplace_back(&(*list)[i], fmt::format("pre_tokenizer.pretokenizers[{}]", i));
      }
    } else {
      steps.emplace_back(p, "pre_tokenizer");
    }
    bool byte_level = false;
    for (const auto& [step, key] : steps) {
      const Json* t = member(*step, "type");
      if (t == nullptr || !t->is_string()) return bad(key + ".type", "missing or not a string");
      std::string kind = t->get<std::string>();
      if (byte_level) return unsupported(key + ".type", "\"{}\" after ByteLevel is not supported", kind);
      if (kind == "Split") {
        MB_TRY(load_split(*step, key));
      } else if (kind == "ByteLevel") {
        MB_ASSIGN(bool prefix_space, flag(*step, "add_prefix_space", key, false));
        if (prefix_space) return unsupported(key + ".add_prefix_space", "add_prefix_space: true is not supported");
        MB_ASSIGN(bool use_regex, flag(*step, "use_regex", key, true));
        if (use_regex) {
          MB_ASSIGN(Regex r, compile_split_regex(kGpt2Pattern, m_where));
          m_impl->split_regexes.push_back(std::move(r));
        }
        byte_level = true;
      } else {
        return unsupported(key + ".type", "pre-tokenizer \"{}\" is not supported (only Split and ByteLevel)", kind);
      }
    }
    if (!byte_level) return unsupported("pre_tokenizer", "has no ByteLevel step; only byte-level BPE is supported");
    return Status();
  }

  Status load_split(const Json& step, const std::string& key) {
    const Json* behavior = member(step, "behavior");
    if (behavior == nullptr || !behavior->is_string() || behavior->get<std::string>() != "Isolated") {
      return unsupported(key + ".behavior", "only \"Isolated\" is supported");
    }
    MB_ASSIGN(bool invert, flag(step, "invert", key, false));
    if (invert) return unsupported(key + ".invert", "invert: true is not supported");
    const Json* pattern = member(step, "pattern");
    std::string regex;
    if (const Json* r = pattern ? member(*pattern, "Regex") : nullptr; r != nullptr && r->is_string()) {
      regex = r->get<std::string>();
    } else if (const Json* s = pattern ? member(*pattern, "String") : nullptr; s != nullptr && s->is_string()) {
      // A literal: escape every ASCII punctuation character for PCRE2.
      for (char c : s->get<std::string>()) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x80 && !std::isalnum(u)) regex.push_back('\\');
        regex.push_back(c);
      }
      if (regex.empty()) return bad(key + ".pattern.String", "empty pattern");
    } else {
      return bad(key + ".pattern", "expected {{\"Regex\": \"...\"}} or {{\"String\": \"...\"}}");
    }
    Result<Regex> compiled = compile_split_regex(regex, m_where);
    if (!compiled.ok()) return error_at(compiled.error().code, key + ".pattern", compiled.error().message);
    m_impl->split_regexes.push_back(std::move(compiled).value());
    return Status();
  }

  Status check_decoder() {
    const Json* d = member(m_root, "decoder");
    if (d == nullptr || d->is_null()) return Status();
    const Json* t = member(*d, "type");
    if (t == nullptr || !t->is_string() || t->get<std::string>() != "ByteLevel") {
      return unsupported("decoder.type", "only the ByteLevel decoder is supported");
    }
    return Status();
  }

  // Derived tables: per-byte ids, decode bytes and flags per id.
  void finish_tables() {
    Tokenizer::Impl& t = *m_impl;
    for (int b = 0; b < 256; ++b) {
      std::string ch;
      append_utf8(ch, byte_to_code_point(static_cast<uint8_t>(b)));
      auto it = t.vocab.find(ch);
      t.byte_ids[b] = it == t.vocab.end() ? -1 : it->second;
    }
    size_t n = t.id_to_token.size();
    t.id_bytes.assign(n, std::string());
    t.id_flags.assign(n, 0);
    for (size_t id = 0; id < n; ++id) t.id_bytes[id] = byte_level_decode(t.id_to_token[id]);
    // Added tokens decode to their content as written (docs/formats/tokenizer.md §6), also
    // when they share an id with a vocabulary entry.
    for (const AddedToken& a : t.added) {
      t.id_bytes[a.id] = a.content;
      t.id_flags[a.id] = Tokenizer::Impl::kAdded | (a.special ? Tokenizer::Impl::kSpecial : 0);
    }
  }

  const TokenizerDocument& m_doc;
  const Json& m_root;
  std::string m_where;
  std::unique_ptr<Tokenizer::Impl> m_impl;
};

Result<Tokenizer> tokenizer_from_document(const TokenizerDocument& doc, std::string_view where) {
  return TokenizerLoader(doc, where).load();
}

Result<Tokenizer> Tokenizer::from_json(std::string_view json_text, std::string_view where) {
  MB_ASSIGN(TokenizerDocument doc, read_tokenizer_document(json_text, where));
  return tokenizer_from_document(doc, where);
}

Result<Tokenizer> Tokenizer::load(const FileSystem& fs, const fs::path& path) {
  MB_ASSIGN(std::string text, fs.read_file(path));
  return from_json(text, path.string());
}

}  // namespace mb::inference
