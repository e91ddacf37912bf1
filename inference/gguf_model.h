#pragma once
// Models stored as one GGUF file (docs/formats/gguf.md): where the file is,
// the ModelConfig its architecture metadata describes, and the Model whose
// matrices are views of its ggml blocks in the file's mapping (dequantized
// inside the matmul, inference/kernels.h), with GGUF names mapped back to the
// engine's and llama's q/k row permutation undone.
//
// Errors name the file and the metadata key or tensor: a truncated or
// hostile file is Errc::kCorrupt (from the reader or from the checks here),
// an architecture or type the engine cannot run is Errc::kUnsupported.
#include <memory>
#include <optional>

#include "base/fs.h"
#include "base/result.h"
#include "inference/model.h"
#include "inference/model_config.h"
#include "tensors/gguf_reader.h"

namespace mb::inference {

// general.architecture and the ARCH.* keys, plus what the tensor list says
// (vocabulary size, tied output, biases).
Result<ModelConfig> gguf_model_config(const GgufFile& file);

// The model of an open file; Model::storage keeps `file` alive.
Result<Model> load_gguf_model(std::shared_ptr<const GgufFile> file);

}  // namespace mb::inference
