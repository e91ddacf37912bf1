#pragma once
// Preflight of a model target's base: what can be found wrong in it without
// running a step, so that the build stops with exit 2 before anything runs
// or is cached, naming the user's files (not the cache path a step would
// have seen):
//   - with an in-process gate (the native engine): its config.json names an
//     architecture the engine runs;
//   - with that gate, or an export that writes tokenizer metadata:
//     tokenizer.json and tokenizer_config.json load;
//   - for a GGUF export: tokenizer_config.json exists (its chat template
//     goes into the file) and config.json names an architecture with a GGUF
//     mapping;
//   - for a Hugging Face export: config.json names an architecture whose
//     transformers names the export knows (tensors/hf_export.h).
// (Whether the adapters fit the base is checked by the fuse itself before it
// writes anything.) Only a source is checked: a base that is another
// target's output is checked by that target's own preflight.
#include <string>

#include "graph/target_kind.h"

namespace mb {

struct ModelPreflight {
  bool needs_engine = false;     // a native gate will load the artifact
  bool needs_tokenizer = false;  // an export writes tokenizer metadata
  bool needs_gguf = false;       // a GGUF export: implies needs_tokenizer
  bool needs_hf = false;         // a Hugging Face export
};

Status preflight_model(const FileSystem& fs, const SourcePathFn& source_path, const std::string& base,
                       const ModelPreflight& options);

}  // namespace mb
