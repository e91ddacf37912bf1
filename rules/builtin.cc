#include "rules/builtin.h"

#include "rules/command.h"
#include "rules/gate.h"

namespace mb {

void register_builtin_rules(RuleRegistry& registry) {
  registry.add(std::make_unique<CommandRule>());
  registry.add(std::make_unique<GateRule>());
}

}  // namespace mb
