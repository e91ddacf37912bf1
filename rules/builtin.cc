#include "rules/builtin.h"

#include "rules/command.h"
#include "rules/export.h"
#include "rules/fuse.h"
#include "rules/gate.h"
#include "rules/model_target.h"
#include "rules/quantize.h"

namespace mb {

void register_builtin_rules(Registry& registry) {
  registry.add(std::make_unique<ModelTargetKind>());
  registry.add(std::make_unique<CommandTargetKind>());
  registry.add(std::make_unique<CommandRule>());
  registry.add(std::make_unique<GateRule>());
  registry.add(std::make_unique<FuseRule>());
  registry.add(std::make_unique<QuantizeRule>());
  registry.add(std::make_unique<ExportRule>());
}

}  // namespace mb
