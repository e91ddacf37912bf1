#pragma once
// Generator: greedy decoding over a Forward session, with stop tokens, stop
// strings, streaming and timing; the core of Engine::generate*.
//
// It keeps the token ids whose keys and values sit in the session's cache and
// reuses the longest common prefix on the next call (a gate that sends many
// prompts with the same system prompt prefills it once). Reuse is exact:
// logits do not depend on how a sequence was split (see forward.h).
#include <cstdint>
#include <functional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "inference/engine.h"
#include "inference/forward.h"

namespace mb::inference {

class Generator {
 public:
  // `detokenize` turns token ids into text (bytes decoded as UTF-8).
  // REQUIRES: `forward` outlives this object.
  Generator(Forward& forward, std::set<int32_t> stop_ids,
            std::function<std::string(std::span<const int32_t>)> detokenize);

  // Errors when the prompt is empty or leaves no room in the context.
  // Generation also ends ("max_tokens") when the context is full.
  Result<Generation> generate(std::span<const int32_t> prompt, const GenerateOptions& options);

  // Logits from an empty cache (last position, or all positions).
  Result<std::vector<float>> logits(std::span<const int32_t> tokens, bool all_positions);

  const std::set<int32_t>& stop_ids() const { return m_stop_ids; }

 private:
  // Feeds `tokens` after the longest cached prefix; last-position logits.
  Status prefill(std::span<const int32_t> tokens, std::vector<float>& logits);

  Forward& m_forward;
  std::set<int32_t> m_stop_ids;
  std::function<std::string(std::span<const int32_t>)> m_detokenize;
  std::vector<int32_t> m_cached;  // ids of the positions in the cache
};

// Index of the largest value (the lowest index among equal maxima).
int32_t argmax(std::span<const float> v);

}  // namespace mb::inference
