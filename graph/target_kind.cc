#include "graph/target_kind.h"

#include <algorithm>

namespace mb {

TargetReader::TargetReader(const YamlReader& yaml, std::string target, YAML::Node node, YAML::Node defaults,
                           std::vector<std::string> default_keys)
    : m_yaml(yaml),
      m_target(std::move(target)),
      m_node(std::move(node)),
      m_defaults(std::move(defaults)),
      m_default_keys(std::move(default_keys)) {}

Location TargetReader::location_of(const YAML::Node& node) const {
  return Location{m_yaml.file(), node.Mark().line + 1, node.Mark().column + 1};
}

YAML::Node TargetReader::get(std::string_view key) const {
  const std::string k(key);
  if (m_node[k]) return m_node[k];
  const bool is_default = std::find(m_default_keys.begin(), m_default_keys.end(), k) != m_default_keys.end();
  if (is_default && m_defaults.IsMap() && m_defaults[k]) return m_defaults[k];
  return YAML::Node(YAML::NodeType::Undefined);  // a default Node() is null, which tests true
}

bool TargetReader::has(std::string_view key) const {
  YAML::Node n = get(key);
  return n.IsDefined() && !n.IsNull();
}

bool TargetReader::has_own(std::string_view key) const { return static_cast<bool>(m_node[std::string(key)]); }

Result<std::string> TargetReader::string(std::string_view key) const {
  return m_yaml.string(get(key), std::string(key));
}

Result<int64_t> TargetReader::integer(std::string_view key) const { return m_yaml.integer(get(key), std::string(key)); }

Result<double> TargetReader::number(std::string_view key) const { return m_yaml.number(get(key), std::string(key)); }

Result<double> TargetReader::fraction(std::string_view key) const {
  MB_ASSIGN(double x, number(key));
  if (!(x >= 0.0 && x <= 1.0)) return error(key, fmt::format("'{}' must be between 0 and 1, got {}", key, x));
  return x;
}

Result<std::vector<std::string>> TargetReader::string_list(std::string_view key) const {
  return m_yaml.string_list(get(key), std::string(key));
}

Result<std::string> TargetReader::one_of(std::string_view key, const std::vector<std::string>& choices) const {
  MB_ASSIGN(std::string s, string(key));
  if (std::find(choices.begin(), choices.end(), s) != choices.end()) return s;
  std::string list;
  for (size_t i = 0; i < choices.size(); ++i)
    list += (i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ") + choices[i];
  const std::string h = did_you_mean(s, choices);
  return error(key, fmt::format("{} must be {}, got '{}'{}", key, list, s,
                                h.empty() ? "" : fmt::format(" (did you mean '{}'?)", h)));
}

Result<std::string> TargetReader::reference(std::string_view key) { return reference_at(get(key), std::string(key)); }

Result<std::vector<std::string>> TargetReader::reference_list(std::string_view key) {
  YAML::Node node = get(key);
  MB_ASSIGN(auto names, m_yaml.string_list(node, std::string(key)));
  for (const auto& n : names) add_reference(n, node);
  return names;
}

Result<std::string> TargetReader::reference_at(const YAML::Node& node, const std::string& key) {
  MB_ASSIGN(std::string name, m_yaml.string(node, key));
  add_reference(name, node);
  return name;
}

void TargetReader::add_reference(std::string name, const YAML::Node& node) {
  m_refs.push_back({std::move(name), location_of(node)});
}

Error TargetReader::error(std::string_view key, std::string message) const {
  YAML::Node n = get(key);
  return n.IsDefined() ? m_yaml.error(n, std::move(message)) : error(std::move(message));
}

Error TargetReader::error(std::string message) const { return m_yaml.error(m_node, std::move(message)); }

}  // namespace mb
