#include "graph/rule.h"

#include <cassert>

namespace mb {

void RuleRegistry::add(std::unique_ptr<Rule> rule) {
  std::string kind(rule->kind());
  assert(!m_rules.count(kind) && "rule kind registered twice");
  m_rules.emplace(std::move(kind), std::move(rule));
}

const Rule* RuleRegistry::find(std::string_view kind) const {
  auto it = m_rules.find(kind);
  return it == m_rules.end() ? nullptr : it->second.get();
}

std::vector<std::string> RuleRegistry::kinds() const {
  std::vector<std::string> out;
  for (const auto& [k, r] : m_rules) out.push_back(k);
  return out;
}

}  // namespace mb
