#pragma once
// Typed access to yaml-cpp nodes with errors that name file:line:column.
//
// Every getter either returns the value or an Error whose `where` is the
// node's position; check_keys() rejects unknown keys with a did-you-mean.
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace mb {

class YamlReader {
 public:
  explicit YamlReader(std::string file) : m_file(std::move(file)) {}

  std::string where(const YAML::Node& node) const;
  Error error(const YAML::Node& node, std::string message) const;

  // Errors on a key not in `allowed` (with a did-you-mean) and on duplicates.
  Status check_keys(const YAML::Node& map, const std::string& what, const std::vector<std::string>& allowed) const;
  Status expect_map(const YAML::Node& node, const std::string& what) const;

  Result<std::string> string(const YAML::Node& node, const std::string& key) const;
  // Accepts 8 and 8.0; rejects 8.5 and "8".
  Result<int64_t> integer(const YAML::Node& node, const std::string& key) const;
  Result<double> number(const YAML::Node& node, const std::string& key) const;
  Result<bool> boolean(const YAML::Node& node, const std::string& key) const;
  // A string or a list of strings.
  Result<std::vector<std::string>> string_list(const YAML::Node& node, const std::string& key) const;
  // Any YAML value as JSON (plain scalars typed by YAML 1.2 core rules,
  // quoted scalars always strings). Map key order is preserved.
  Result<nlohmann::ordered_json> to_json(const YAML::Node& node) const;

  const std::string& file() const { return m_file; }

 private:
  std::string m_file;
};

// Parses text into a node; a syntax error names file:line:col.
Result<YAML::Node> load_yaml(std::string_view text, const std::string& file);

// The closest candidate within a small edit distance, or "".
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace mb
