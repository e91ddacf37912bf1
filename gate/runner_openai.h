#pragma once
// The `openai` runner: POST /v1/chat/completions (with tools, temperature 0)
// to an OpenAI-compatible server such as llama-server, mlx_lm.server, vLLM,
// Ollama or `modelbuild serve`. With `server: {command: [...]}` the runner
// starts the server itself, waits until GET /v1/models (or /health) answers,
// and stops it (SIGTERM, then SIGKILL) when the gate is done, even on error.
#include "gate/runner.h"

namespace mb::gate {

Result<std::unique_ptr<Runner>> make_openai_runner(const nlohmann::json& config, const RunnerTarget& target);

}  // namespace mb::gate
