#pragma once
// Engine: in-process CPU inference for Qwen2/Qwen2.5/Llama-family models in
// the mlx_lm layout (float or MLX affine-quantized weights) or in one GGUF
// file (float or ggml block weights), with optional
// runtime LoRA adapters (MLX or PEFT) applied without fusing.
//
// The gate calls it in-process; `modelbuild generate` and `modelbuild serve`
// are thin fronts on it. An Engine owns its weights (mmapped) and its KV
// cache; one Engine serves one generation at a time (not thread-safe), but
// internally uses `threads` worker threads for every matmul.
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/fs.h"
#include "base/result.h"
#include "inference/sampler.h"

namespace mb::inference {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", "tool"
  std::string content;
  // Assistant messages only: the calls the assistant made, in the OpenAI form
  // ([{"function": {"name": ..., "arguments": object or JSON string}}, ...]),
  // rendered as <tool_call> blocks after the content. Null or empty: none.
  nlohmann::ordered_json tool_calls = nullptr;
};

struct LoadOptions {
  std::vector<fs::path> adapters;  // applied at run time, in order
  int threads = 0;                 // 0 = all cores
};

struct GenerateOptions {
  int max_tokens = 256;
  // Generation stops at any end-of-generation token of the model
  // (<|im_end|>, <|endoftext|>, eos ids from config/generation_config) and at
  // any of these strings.
  std::vector<std::string> stop_strings;
  // Called with each newly decoded piece of text (complete UTF-8 only).
  std::function<void(std::string_view)> on_text;
  // Greedy by default; see sampler.h.
  SamplingOptions sampling;
  // Called before each token is chosen with the tokens generated so far; it
  // may set logits to -inf to forbid tokens (constrained decoding). It must
  // leave at least one finite logit.
  std::function<void(std::span<const int32_t> generated, std::span<float> logits)> logits_filter;
  // Called after each generated token (and its text) is out; returning false
  // ends the generation with stop_reason "cancelled".
  std::function<bool(int32_t token)> on_token;
};

struct Generation {
  std::string text;  // completion, without the stop token
  std::vector<int32_t> tokens;
  int prompt_tokens = 0;
  int completion_tokens = 0;
  std::string stop_reason;  // "eos", "stop_string", "max_tokens", "cancelled"
  double prefill_seconds = 0;
  double time_to_first_token_seconds = 0;
  double decode_seconds = 0;
  double decode_tokens_per_second = 0;
  double prefill_tokens_per_second = 0;
};

struct ModelSummary {
  std::string architecture;  // "qwen2", "llama", "qwen3"
  int64_t parameters = 0;
  int layers = 0;
  int hidden = 0;
  int vocab = 0;
  std::string weight_format;  // "bf16", "f16", "f32", "q8 gs64", ...
  uint64_t weight_bytes = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;

  // Loads config.json, tokenizer.json (+ tokenizer_config.json,
  // generation_config.json) and the safetensors weights of `model_dir`; or,
  // when `model_dir` is a .gguf file or a directory holding exactly one (and
  // no config.json), everything from that GGUF file (inference/gguf_model.h).
  // Errors: unsupported architecture, missing/malformed tokenizer.json or
  // GGUF metadata, adapter shapes that do not match the model.
  static Result<std::unique_ptr<Engine>> load(const FileSystem& fs, const fs::path& model_dir,
                                              const LoadOptions& options);

  virtual const ModelSummary& summary() const = 0;
  virtual double load_seconds() const = 0;

  // Renders messages (+ optional OpenAI-style `tools` array) with the model's
  // chat template (ChatML as Qwen2.5 renders it), ending with the assistant
  // generation prompt. `tools` is ordered_json because the template prints
  // each tool with its keys in the caller's order (a sorted nlohmann::json
  // would change the prompt the model was trained on).
  virtual Result<std::string> render_chat(const std::vector<ChatMessage>& messages,
                                          const nlohmann::ordered_json& tools) const = 0;

  // Greedy decoding. Errors when the prompt does not fit the context.
  virtual Result<Generation> generate(const std::vector<ChatMessage>& messages, const nlohmann::ordered_json& tools,
                                      const GenerateOptions& options) = 0;
  virtual Result<Generation> generate_from_text(std::string_view prompt, const GenerateOptions& options) = 0;

  virtual Result<std::vector<int32_t>> tokenize(std::string_view text) const = 0;
  virtual std::string detokenize(std::span<const int32_t> tokens) const = 0;

  // Logits of the last position after feeding `tokens` from an empty cache;
  // for tests against a reference implementation.
  virtual Result<std::vector<float>> logits(std::span<const int32_t> tokens) = 0;
  // Logits of every position, row-major [tokens.size(), vocab].
  virtual Result<std::vector<float>> all_logits(std::span<const int32_t> tokens) = 0;
};

}  // namespace mb::inference
