#include "inference/tokenizer_document.h"

#include <algorithm>

namespace mb::inference {

using Json = nlohmann::json;

namespace {

// A SAX handler that builds a DOM for the small parts of the document and
// streams the two big ones. Containers nested where a vocabulary id or a
// merge part belongs are skipped (counted in m_nest) and mark the entry bad.
class DocumentSax : public nlohmann::json_sax<Json> {
 public:
  explicit DocumentSax(TokenizerDocument& doc) : m_doc(doc) {}

  const std::string& error() const { return m_error; }

  bool null() override { return scalar(Json(nullptr)); }
  bool boolean(bool v) override { return scalar(Json(v)); }
  bool number_integer(number_integer_t v) override { return scalar(Json(v)); }
  bool number_unsigned(number_unsigned_t v) override { return scalar(Json(v)); }
  bool number_float(number_float_t v, const string_t&) override { return scalar(Json(v)); }
  bool binary(binary_t&) override { return scalar(Json(nullptr)); }

  bool string(string_t& v) override {
    if (m_mode == Mode::kMerges && m_nest == 0) {
      m_doc.merges.push_back({TokenizerDocument::MergeKind::kLegacy, v, {}});
      return true;
    }
    if (m_mode == Mode::kMerges && m_nest == 1) {
      m_parts.push_back(v);
      return true;
    }
    return scalar(Json(v));
  }

  bool key(string_t& k) override {
    if (m_mode == Mode::kDom) {
      m_key = k;
    } else if (m_mode == Mode::kVocab && m_nest == 0) {
      m_vocab_key = k;
    }
    return true;
  }

  bool start_object(std::size_t) override {
    if (m_mode == Mode::kDom) {
      if (at_model_member("vocab")) {
        put(Json::object());
        m_mode = Mode::kVocab;
        m_doc.vocab.clear();
        m_nest = 0;
        return true;
      }
      push(Json::object());
      return true;
    }
    nested_container(true);
    return true;
  }

  bool end_object() override {
    if (m_mode == Mode::kDom) {
      m_stack.pop_back();
      m_keys.pop_back();
    } else if (m_mode == Mode::kVocab && m_nest == 0) {
      m_mode = Mode::kDom;
    } else {
      --m_nest;
    }
    return true;
  }

  bool start_array(std::size_t) override {
    if (m_mode == Mode::kDom) {
      if (at_model_member("merges")) {
        put(Json::array());
        m_mode = Mode::kMerges;
        m_doc.merges.clear();
        m_nest = 0;
        return true;
      }
      push(Json::array());
      return true;
    }
    if (m_mode == Mode::kMerges && m_nest == 0) {  // a ["left", "right"] entry
      m_nest = 1;
      m_parts.clear();
      m_entry_bad = false;
      return true;
    }
    nested_container(false);
    return true;
  }

  bool end_array() override {
    if (m_mode == Mode::kDom) {
      m_stack.pop_back();
      m_keys.pop_back();
    } else if (m_mode == Mode::kMerges && m_nest == 0) {
      m_mode = Mode::kDom;
    } else if (m_mode == Mode::kMerges && m_nest == 1) {
      TokenizerDocument::Merge merge;
      if (!m_entry_bad && m_parts.size() == 2) {
        merge = {TokenizerDocument::MergeKind::kPair, std::move(m_parts[0]), std::move(m_parts[1])};
      }
      m_doc.merges.push_back(std::move(merge));
      m_nest = 0;
    } else {
      --m_nest;
    }
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) override {
    m_error = ex.what();
    return false;
  }

 private:
  enum class Mode { kDom, kVocab, kMerges };

  // True when the value about to start is root.model.<name>.
  bool at_model_member(const char* name) const {
    return m_stack.size() == 2 && m_keys[1] == "model" && m_stack[1]->is_object() && m_key == name;
  }

  // A container where a streamed section expects a scalar.
  void nested_container(bool is_object) {
    if (m_mode == Mode::kVocab && m_nest == 0) vocab_value(is_object ? Json::object() : Json::array());
    if (m_mode == Mode::kMerges && m_nest == 0) m_doc.merges.push_back({});  // an object entry: bad
    if (m_mode == Mode::kMerges && m_nest == 1) m_entry_bad = true;
    ++m_nest;
  }

  void vocab_value(const Json& v) {
    if (v.is_number_integer()) {
      int64_t id = v.is_number_unsigned() ? static_cast<int64_t>(std::min<uint64_t>(v.get<uint64_t>(), INT64_MAX))
                                          : v.get<int64_t>();
      m_doc.vocab.emplace_back(m_vocab_key, id);
    } else if (m_doc.vocab_error.empty()) {
      m_doc.vocab_error = fmt::format("model.vocab[\"{}\"]: expected a token id, got {}", m_vocab_key, v.type_name());
    }
  }

  bool scalar(Json v) {
    if (m_mode == Mode::kVocab) {
      if (m_nest == 0) vocab_value(v);
      return true;
    }
    if (m_mode == Mode::kMerges) {
      if (m_nest == 0) m_doc.merges.push_back({});  // a non-string entry: bad
      if (m_nest == 1) m_entry_bad = true;
      return true;
    }
    put(std::move(v));
    return true;
  }

  Json* put(Json v) {
    if (m_stack.empty()) {
      m_doc.root = std::move(v);
      return &m_doc.root;
    }
    Json& parent = *m_stack.back();
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    Json& slot = parent[m_key];
    slot = std::move(v);
    return &slot;
  }

  // Pointers into the DOM stay valid: a container only grows while it is
  // on top of the stack, and then none of its children is on the stack.
  void push(Json v) {
    std::string key = !m_stack.empty() && m_stack.back()->is_object() ? m_key : std::string();
    m_stack.push_back(put(std::move(v)));
    m_keys.push_back(std::move(key));
  }

  TokenizerDocument& m_doc;
  std::vector<Json*> m_stack;
  std::vector<std::string> m_keys;  // the key each open container was stored under
  std::string m_key;
  Mode m_mode = Mode::kDom;
  int m_nest = 0;
  std::string m_vocab_key;
  std::vector<std::string> m_parts;
  bool m_entry_bad = false;
  std::string m_error;
};

}  // namespace

Result<TokenizerDocument> read_tokenizer_document(std::string_view text, std::string_view where) {
  TokenizerDocument doc;
  DocumentSax sax(doc);
  bool ok = Json::sax_parse(text, &sax);
  if (!ok) {
    return make_error(Errc::kInvalidInput, std::string(where), "not valid JSON: {}",
                      sax.error().empty() ? "parse failed" : sax.error());
  }
  return doc;
}

}  // namespace mb::inference
