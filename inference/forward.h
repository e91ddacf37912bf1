#pragma once
// Forward: one sequence's state (KV cache and scratch) over a shared Model.
//
// run() appends tokens after those already cached and returns their logits.
// Feeding a sequence in one call (prefill) or in several (decode steps, or
// prefill of a continuation) gives bit-identical logits: every kernel sums in
// a fixed order (see kernels.h) and attention for a position reads exactly
// the cached keys and values it would read in a single call.
//
// Not thread-safe; the matrix products use `pool`.
#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"
#include "inference/model.h"
#include "inference/thread_pool.h"

namespace mb::inference {

class Forward {
 public:
  // REQUIRES: `model` and `pool` outlive this object.
  Forward(const Model& model, ThreadPool& pool);

  // Positions the cache may hold: max_position_embeddings unless lowered.
  int64_t context_limit() const { return m_context_limit; }
  void set_context_limit(int64_t n) { m_context_limit = n; }

  int64_t position() const { return m_pos; }
  void reset() { m_pos = 0; }
  // Forgets cached positions >= n (REQUIRES n <= position()).
  void truncate(int64_t n) { m_pos = n; }

  // Appends `tokens` and writes the logits of every new position
  // ([tokens.size(), vocab]) or only of the last ([vocab]).
  // Errors: empty input, a token id outside the vocabulary, or a sequence
  // longer than context_limit().
  Status run(std::span<const int32_t> tokens, bool all_positions, std::vector<float>& logits);

 private:
  void ensure_capacity(int64_t positions);
  void linear(const Linear& l, const float* x, int64_t n, float* y);
  void add_bias_and_lora(const Linear& l, const float* x, int64_t n, float* y);
  void attention(int layer, int64_t n);

  const Model& m_model;
  ThreadPool& m_pool;
  int64_t m_context_limit;
  int64_t m_pos = 0;
  int64_t m_capacity = 0;
  std::vector<std::vector<float>> m_k, m_v;  // per layer [capacity, kv_heads * head_dim]
  std::vector<double> m_inv_freq;
  // Scratch, sized for the current call.
  std::vector<float> m_h, m_x, m_q, m_kn, m_vn, m_attn, m_gate, m_up, m_tmp, m_lora_u, m_lora_t;
};

}  // namespace mb::inference
