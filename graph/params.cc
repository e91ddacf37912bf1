#include "graph/params.h"

#include <vector>

#include "base/yaml_reader.h"

namespace mb {

ParamReader::ParamReader(const nlohmann::json& params) : m_params(params) {}

void ParamReader::fail(const char* key, const std::string& what) {
  if (m_error.empty()) m_error = fmt::format("parameter '{}' {}", key, what);
}

Status ParamReader::finish() const {
  if (!m_params.is_object()) return make_error(Errc::kInternal, "", "parameters must be an object");
  // An unknown key first: a misspelt name also makes its field "missing",
  // and the misspelling is what to fix.
  const std::vector<std::string> known(m_read.begin(), m_read.end());
  for (const auto& [key, value] : m_params.items()) {
    if (m_read.count(key)) continue;
    const std::string hint = did_you_mean(key, known);
    return make_error(Errc::kInternal, "", "unknown parameter '{}'{}", key,
                      hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint));
  }
  if (!m_error.empty()) return make_error(Errc::kInternal, "", "{}", m_error);
  return {};
}

}  // namespace mb
