#include "base/yaml_reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

namespace mb {
namespace {

bool is_quoted(const YAML::Node& node) { return node.Tag() == "!"; }

std::optional<int64_t> parse_int(const std::string& s) {
  int64_t v = 0;
  const char* b = s.data();
  const char* e = s.data() + s.size();
  if (!s.empty() && s[0] == '+') ++b;
  auto [p, ec] = std::from_chars(b, e, v);
  if (ec != std::errc() || p != e) return std::nullopt;
  return v;
}

std::optional<double> parse_double(const std::string& s) {
  if (s.empty()) return std::nullopt;
  if (s == ".inf" || s == "+.inf") return INFINITY;
  if (s == "-.inf") return -INFINITY;
  if (s == ".nan") return NAN;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  // Reject things strtod accepts but YAML does not call numbers.
  for (char c : s)
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'))
      return std::nullopt;
  return v;
}

}  // namespace

std::string YamlReader::where(const YAML::Node& node) const {
  const YAML::Mark mark = node.Mark();
  if (mark.line < 0) return m_file;
  return fmt::format("{}:{}:{}", m_file, mark.line + 1, mark.column + 1);
}

Error YamlReader::error(const YAML::Node& node, std::string message) const {
  return Error{Errc::kInvalidInput, where(node), std::move(message)};
}

Status YamlReader::expect_map(const YAML::Node& node, const std::string& what) const {
  if (!node.IsMap()) return error(node, fmt::format("{} must be a mapping", what));
  return {};
}

Status YamlReader::check_keys(const YAML::Node& map, const std::string& what,
                              const std::vector<std::string>& allowed) const {
  MB_TRY(expect_map(map, what));
  std::set<std::string> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (!it->first.IsScalar()) return error(it->first, fmt::format("{}: keys must be strings", what));
    const std::string key = it->first.Scalar();
    if (!seen.insert(key).second) return error(it->first, fmt::format("duplicate key '{}' in {}", key, what));
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string hint = did_you_mean(key, allowed);
      return error(it->first, hint.empty()
                                  ? fmt::format("unknown key '{}' in {}", key, what)
                                  : fmt::format("unknown key '{}' in {} (did you mean '{}'?)", key, what, hint));
    }
  }
  return {};
}

Result<std::string> YamlReader::string(const YAML::Node& node, const std::string& key) const {
  if (!node.IsScalar()) return error(node, fmt::format("'{}' must be a string", key));
  return node.Scalar();
}

Result<int64_t> YamlReader::integer(const YAML::Node& node, const std::string& key) const {
  if (!node.IsScalar() || is_quoted(node)) return error(node, fmt::format("'{}' must be an integer", key));
  if (auto v = parse_int(node.Scalar())) return *v;
  if (auto d = parse_double(node.Scalar()); d && std::isfinite(*d) && std::floor(*d) == *d && std::fabs(*d) < 9.0e15)
    return static_cast<int64_t>(*d);
  return error(node, fmt::format("'{}' must be an integer, got '{}'", key, node.Scalar()));
}

Result<double> YamlReader::number(const YAML::Node& node, const std::string& key) const {
  if (!node.IsScalar() || is_quoted(node)) return error(node, fmt::format("'{}' must be a number", key));
  if (auto d = parse_double(node.Scalar())) return *d;
  return error(node, fmt::format("'{}' must be a number, got '{}'", key, node.Scalar()));
}

Result<bool> YamlReader::boolean(const YAML::Node& node, const std::string& key) const {
  if (node.IsScalar() && !is_quoted(node)) {
    const std::string& s = node.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  return error(node, fmt::format("'{}' must be true or false", key));
}

Result<std::vector<std::string>> YamlReader::string_list(const YAML::Node& node, const std::string& key) const {
  std::vector<std::string> out;
  if (node.IsScalar()) {
    out.push_back(node.Scalar());
    return out;
  }
  if (!node.IsSequence()) return error(node, fmt::format("'{}' must be a string or a list of strings", key));
  for (const auto& item : node) {
    if (!item.IsScalar()) return error(item, fmt::format("'{}' entries must be strings", key));
    out.push_back(item.Scalar());
  }
  return out;
}

Result<nlohmann::ordered_json> YamlReader::to_json(const YAML::Node& node) const {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nlohmann::ordered_json(nullptr);
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      if (is_quoted(node)) return nlohmann::ordered_json(s);
      if (s == "null" || s == "~" || s == "Null" || s == "NULL") return nlohmann::ordered_json(nullptr);
      if (s == "true" || s == "True" || s == "TRUE") return nlohmann::ordered_json(true);
      if (s == "false" || s == "False" || s == "FALSE") return nlohmann::ordered_json(false);
      if (auto v = parse_int(s)) return nlohmann::ordered_json(*v);
      if (auto d = parse_double(s)) return nlohmann::ordered_json(*d);
      return nlohmann::ordered_json(s);
    }
    case YAML::NodeType::Sequence: {
      auto arr = nlohmann::ordered_json::array();
      for (const auto& item : node) {
        MB_ASSIGN(auto v, to_json(item));
        arr.push_back(std::move(v));
      }
      return arr;
    }
    case YAML::NodeType::Map: {
      auto obj = nlohmann::ordered_json::object();
      for (auto it = node.begin(); it != node.end(); ++it) {
        if (!it->first.IsScalar()) return error(it->first, "mapping keys must be strings");
        if (obj.contains(it->first.Scalar()))
          return error(it->first, fmt::format("duplicate key '{}'", it->first.Scalar()));
        MB_ASSIGN(auto v, to_json(it->second));
        obj[it->first.Scalar()] = std::move(v);
      }
      return obj;
    }
  }
  return nlohmann::ordered_json(nullptr);
}

namespace {

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

Result<YAML::Node> load_yaml(std::string_view text, const std::string& file) {
  try {
    return YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return make_error(Errc::kInvalidInput, fmt::format("{}:{}:{}", file, e.mark.line + 1, e.mark.column + 1),
                      "YAML syntax error: {}", e.msg);
  }
}

}  // namespace mb
