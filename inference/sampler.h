#pragma once
// Sampler: picks the next token from a row of logits. Temperature 0 is
// greedy (argmax, the lowest index among equal maxima); above 0 it draws
// from softmax(logits / temperature), cut to the smallest set of most
// likely tokens whose probability reaches top_p (nucleus sampling).
//
// Deterministic under a seed: the random stream is std::mt19937_64, whose
// output the C++ standard fixes, turned into doubles here (not through
// std::uniform_real_distribution, whose algorithm is implementation-defined),
// so the same seed and the same logits pick the same tokens on every build
// that computes exp() the same way. A logit of -inf is never picked (the
// logits filter of GenerateOptions uses it to forbid tokens).
//
// One Sampler per generation; not thread-safe.
#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <vector>

namespace mb::inference {

struct SamplingOptions {
  double temperature = 0;        // 0 = greedy; REQUIRES: >= 0
  double top_p = 1;              // REQUIRES: in [0, 1]; 0 keeps only the most likely token
  std::optional<uint64_t> seed;  // absent: a fresh seed from std::random_device
};

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& options);

  // REQUIRES: logits is not empty and at least one logit is finite.
  int32_t sample(std::span<const float> logits);

  // A double in [0, 1) from the next 53 bits of the stream.
  double uniform();

 private:
  SamplingOptions m_options;
  std::mt19937_64 m_rng;
  std::vector<double> m_weights;  // scratch: exp((logit - max) / T)
  std::vector<int32_t> m_order;   // scratch: ids by descending weight
};

}  // namespace mb::inference
