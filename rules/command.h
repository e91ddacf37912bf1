#pragma once
// CommandRule ("command"): runs an external tool as a build step, e.g.
// mlx_lm.convert or llama.cpp's converter, so any tool can sit in the graph.
//
// params: {"argv": [...]} or {"shell": "..."}, and "outputs": [paths].
// Placeholders in argv/shell: {out} is the step's output directory, {NAME}
// (or {in.NAME}) the path of input NAME. The command runs in the recipe's
// directory with MODELBUILD_OUT set; it must create every declared output
// under {out}; anything else it leaves there is removed, so the cached
// result holds exactly what was declared.
#include "graph/rule.h"

namespace mb {

class CommandRule : public Rule {
 public:
  std::string_view kind() const override { return "command"; }
  int algorithm_version() const override { return 1; }
  Status run(StepContext& ctx) const override;
};

// Replaces {out}, {NAME} and {in.NAME}; an unknown placeholder is an error.
Result<std::string> expand_placeholders(std::string_view text, const StepContext& ctx);

}  // namespace mb
