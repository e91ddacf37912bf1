#include "inference/generator.h"

#include <algorithm>
#include <chrono>

#include "inference/sampler.h"
#include "inference/text_stream.h"

namespace mb::inference {

namespace {
using Clock = std::chrono::steady_clock;
double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }
}  // namespace

int32_t argmax(std::span<const float> v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

Generator::Generator(Forward& forward, std::set<int32_t> stop_ids,
                     std::function<std::string(std::span<const int32_t>)> detokenize)
    : m_forward(forward), m_stop_ids(std::move(stop_ids)), m_detokenize(std::move(detokenize)) {}

Status Generator::prefill(std::span<const int32_t> tokens, std::vector<float>& logits) {
  size_t common = 0;
  while (common < m_cached.size() && common < tokens.size() && m_cached[common] == tokens[common]) ++common;
  if (common == tokens.size()) --common;  // the last token must run to give logits
  m_forward.truncate(static_cast<int64_t>(common));
  m_cached.resize(common);
  Status s = m_forward.run(tokens.subspan(common), false, logits);
  if (!s.ok()) {
    m_forward.reset();
    m_cached.clear();
    return s;
  }
  m_cached.assign(tokens.begin(), tokens.end());
  return s;
}

Result<Generation> Generator::generate(std::span<const int32_t> prompt, const GenerateOptions& options) {
  const auto t_start = Clock::now();
  if (prompt.empty()) return Error{Errc::kInvalidInput, "", "empty prompt"};
  const int64_t context = m_forward.context_limit();
  if (static_cast<int64_t>(prompt.size()) >= context)
    return make_error(Errc::kInvalidInput, "", "prompt of {} tokens does not fit the context of {} tokens",
                      prompt.size(), context);
  Generation g;
  g.prompt_tokens = static_cast<int>(prompt.size());
  std::vector<float> logits;
  MB_TRY(prefill(prompt, logits));
  const auto t_prefilled = Clock::now();
  g.prefill_seconds = seconds(t_start, t_prefilled);

  TextStream stream(options.stop_strings, options.on_text);
  Sampler sampler(options.sampling);
  g.stop_reason = "max_tokens";
  Clock::time_point t_first = t_prefilled;
  for (int i = 0; i < options.max_tokens; ++i) {
    if (options.logits_filter) options.logits_filter(g.tokens, logits);
    const int32_t next = sampler.sample(logits);
    if (i == 0) {
      t_first = Clock::now();
      g.time_to_first_token_seconds = seconds(t_start, t_first);
    }
    if (m_stop_ids.count(next)) {
      g.stop_reason = "eos";
      break;
    }
    g.tokens.push_back(next);
    if (stream.update(m_detokenize(g.tokens))) {
      g.stop_reason = "stop_string";
      break;
    }
    if (options.on_token && !options.on_token(next)) {
      g.stop_reason = "cancelled";
      break;
    }
    if (static_cast<int>(g.tokens.size()) == options.max_tokens || m_forward.position() >= context) break;
    Status s = m_forward.run(std::span(&next, 1), false, logits);
    if (!s.ok()) {
      m_forward.reset();
      m_cached.clear();
      return s.error();
    }
    m_cached.push_back(next);
  }
  stream.finish();
  g.text = stream.text();
  g.completion_tokens = static_cast<int>(g.tokens.size());
  g.decode_seconds = seconds(t_first, Clock::now());
  const double prefill_only = seconds(t_start, t_prefilled);
  g.prefill_tokens_per_second = prefill_only > 0 ? g.prompt_tokens / prefill_only : 0;
  // Decode steps: every token after the first needed one forward step.
  const int steps = std::max(0, g.completion_tokens - 1 + (g.stop_reason == "eos" ? 1 : 0));
  g.decode_tokens_per_second = g.decode_seconds > 0 ? steps / g.decode_seconds : 0;
  return g;
}

Result<std::vector<float>> Generator::logits(std::span<const int32_t> tokens, bool all_positions) {
  if (tokens.empty()) return Error{Errc::kInvalidInput, "", "no tokens"};
  m_forward.reset();
  m_cached.clear();
  std::vector<float> out;
  Status s = m_forward.run(tokens, all_positions, out);
  if (!s.ok()) {
    m_forward.reset();
    return s.error();
  }
  m_cached.assign(tokens.begin(), tokens.end());
  return out;
}

}  // namespace mb::inference
