#pragma once
// load_adapter(): an MLX (adapters.safetensors) or PEFT
// (adapter_model.safetensors) LoRA directory -> AdapterModules.
//
// STOPGAP: tensors/adapters.h is the project's adapter reader; until it
// exists the engine reads the two formats here (plain LoRA only: DoRA,
// per-module rank/alpha patterns and embedding LoRA are rejected).
#include <vector>

#include "base/fs.h"
#include "base/result.h"
#include "inference/lora.h"

namespace mb::inference {

Result<std::vector<AdapterModule>> load_adapter(const FileSystem& fs, const fs::path& dir);

}  // namespace mb::inference
