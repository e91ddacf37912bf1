#pragma once
// The `command` runner: one process per case, e.g. `mlx_lm.generate` or
// `llama-cli`, its stdout taken as the response.
#include "gate/runner.h"

namespace mb::gate {

Result<std::unique_ptr<Runner>> make_command_runner(const nlohmann::json& config, const RunnerTarget& target);

}  // namespace mb::gate
