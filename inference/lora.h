#pragma once
// Runtime LoRA: attaches adapter terms to a Model's linear modules without
// touching the base weights, so y = W x + b + sum over adapters of
// scale * B (A x), in the order the adapters were attached.
//
// Adapters come from tensors/adapters.h, whose normalized LoraModule (a
// [rank, in], b [out, rank], absolute scale) covers MLX and PEFT alike.
#include <string>

#include "base/result.h"
#include "inference/model.h"
#include "tensors/adapters.h"

namespace mb::inference {

// Validates every module against the model (it must be one of the model's
// linear modules, with the same [out, in]) before attaching any, so a bad
// adapter leaves the model unchanged. DoRA and embedding LoRA are rejected
// (kUnsupported). The model keeps a reference to the adapter's factors.
Status attach_adapter(Model& model, std::shared_ptr<const Adapter> adapter);

}  // namespace mb::inference
