#pragma once
// Registry: the step kinds (Rule) and target kinds (TargetKind) a build can
// use. rules/builtin.cc registers the built-in ones; tests register fakes.
// Built once at startup and read-only afterwards, so lookups need no lock.
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "graph/rule.h"
#include "graph/target_kind.h"

namespace mb {

class Registry {
 public:
  // REQUIRES: no rule of the same kind, no target kind of the same name or
  // marker key, registered before.
  void add(std::unique_ptr<Rule> rule);
  void add(std::unique_ptr<TargetKind> kind);

  const Rule* rule(std::string_view kind) const;
  std::vector<std::string> rule_kinds() const;
  // In registration order.
  const std::vector<std::unique_ptr<TargetKind>>& target_kinds() const { return m_kinds; }
  const TargetKind* target_kind(std::string_view name) const;

 private:
  std::map<std::string, std::unique_ptr<Rule>, std::less<>> m_rules;
  std::vector<std::unique_ptr<TargetKind>> m_kinds;
};

}  // namespace mb
