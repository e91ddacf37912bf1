#include "inference/sampler.h"

#include <algorithm>
#include <cmath>

namespace mb::inference {

namespace {
// The lowest index among equal maxima, as generator.h's argmax.
int32_t greedy(std::span<const float> v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}
}  // namespace

Sampler::Sampler(const SamplingOptions& options)
    : m_options(options),
      m_rng(options.seed              ? *options.seed
            : options.temperature > 0 ? std::random_device{}()
                                      : 0) {}

double Sampler::uniform() { return static_cast<double>(m_rng() >> 11) * 0x1.0p-53; }

int32_t Sampler::sample(std::span<const float> logits) {
  const int32_t best = greedy(logits);
  if (m_options.temperature <= 0) return best;
  const double top = logits[best];
  const size_t n = logits.size();
  m_weights.resize(n);
  double total = 0;
  for (size_t i = 0; i < n; ++i) {
    // exp(-inf) is 0: a forbidden token has no weight.
    m_weights[i] = std::exp((static_cast<double>(logits[i]) - top) / m_options.temperature);
    total += m_weights[i];
  }
  m_order.clear();
  if (m_options.top_p < 1) {
    for (size_t i = 0; i < n; ++i)
      if (m_weights[i] > 0) m_order.push_back(static_cast<int32_t>(i));
    // Ties keep id order, so the nucleus does not depend on the sort.
    std::stable_sort(m_order.begin(), m_order.end(), [&](int32_t a, int32_t b) { return m_weights[a] > m_weights[b]; });
    double kept = 0;
    size_t keep = 0;
    while (keep < m_order.size() && kept < m_options.top_p * total) kept += m_weights[m_order[keep++]];
    m_order.resize(std::max<size_t>(keep, 1));
    total = kept > 0 ? kept : m_weights[m_order[0]];
  }
  // One draw, walked over the candidates in a fixed order.
  const double target = uniform() * total;
  double acc = 0;
  if (m_order.empty()) {
    for (size_t i = 0; i < n; ++i) {
      acc += m_weights[i];
      if (m_weights[i] > 0 && target < acc) return static_cast<int32_t>(i);
    }
  } else {
    for (int32_t id : m_order) {
      acc += m_weights[id];
      if (target < acc) return id;
    }
  }
  return best;  // rounding left the draw past the last candidate
}

}  // namespace mb::inference
