#pragma once
// The built-in step kinds and target kinds. Adding one is a new file in
// rules/ (and its library code in tensors/ or gate/) plus one line in
// builtin.cc; graph/ never changes.
#include "graph/registry.h"

namespace mb {

void register_builtin_rules(Registry& registry);

}  // namespace mb
