#include "rules/builtin.h"

#include "rules/command.h"
#include "rules/gate.h"
#include "rules/model_rules.h"

namespace mb {

void register_builtin_rules(RuleRegistry& registry) {
  registry.add(std::make_unique<CommandRule>());
  registry.add(std::make_unique<GateRule>());
  registry.add(std::make_unique<FuseRule>());
  registry.add(std::make_unique<QuantizeRule>());
}

}  // namespace mb
