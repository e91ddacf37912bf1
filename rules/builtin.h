#pragma once
// The built-in step kinds. Adding a rule = a new file in rules/ plus one line
// in builtin.cc; the engine itself never changes.
#include "graph/rule.h"

namespace mb {

void register_builtin_rules(RuleRegistry& registry);

}  // namespace mb
