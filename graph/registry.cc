#include "graph/registry.h"

#include <algorithm>
#include <cassert>

namespace mb {

const StepInput* find_input(const std::vector<StepInput>& inputs, std::string_view name) {
  for (const auto& in : inputs)
    if (in.name == name) return &in;
  return nullptr;
}

std::vector<const StepInput*> find_inputs_with_prefix(const std::vector<StepInput>& inputs, std::string_view prefix) {
  std::vector<const StepInput*> out;
  for (const auto& in : inputs)
    if (std::string_view(in.name).starts_with(prefix)) out.push_back(&in);
  return out;
}

void Registry::add(std::unique_ptr<Rule> rule) {
  std::string kind(rule->kind());
  assert(!m_rules.count(kind) && "rule kind registered twice");
  m_rules.emplace(std::move(kind), std::move(rule));
}

void Registry::add(std::unique_ptr<TargetKind> kind) {
  assert(
      std::none_of(m_kinds.begin(), m_kinds.end(),
                   [&](const auto& k) { return k->name() == kind->name() || k->marker_key() == kind->marker_key(); }) &&
      "target kind registered twice");
  m_kinds.push_back(std::move(kind));
}

const Rule* Registry::rule(std::string_view kind) const {
  auto it = m_rules.find(kind);
  return it == m_rules.end() ? nullptr : it->second.get();
}

std::vector<std::string> Registry::rule_kinds() const {
  std::vector<std::string> out;
  for (const auto& [k, r] : m_rules) out.push_back(k);
  return out;
}

const TargetKind* Registry::target_kind(std::string_view name) const {
  for (const auto& k : m_kinds)
    if (k->name() == name) return k.get();
  return nullptr;
}

}  // namespace mb
