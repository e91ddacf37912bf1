#pragma once
// Runtime LoRA: attaches adapter terms to a Model's linear modules without
// touching the base weights, so y = W x + b + sum over adapters of
// scale * B (A x), in the order the adapters were attached.
//
// AdapterModule is the engine's own, format-neutral description of one
// adapted module (MLX lora_a/lora_b and PEFT lora_A/lora_B both map to it).
#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "inference/model.h"

namespace mb::inference {

struct AdapterModule {
  std::string module;  // HF module path, "model.layers.0.self_attn.q_proj"
  int64_t rank = 0;
  int64_t in = 0;
  int64_t out = 0;
  float scale = 1;
  std::vector<float> a;  // [rank, in] row-major (PEFT lora_A; MLX lora_a transposed)
  std::vector<float> b;  // [out, rank] row-major (PEFT lora_B; MLX lora_b transposed)
};

// Validates every module against the model (the module must exist and its
// [out, in] must match) before attaching any, so a bad adapter leaves the
// model unchanged. `source` names the adapter in messages.
Status attach_adapter(Model& model, std::vector<AdapterModule> modules, const std::string& source);

}  // namespace mb::inference
