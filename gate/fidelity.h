#pragma once
// Fidelity: how close an artifact's next-token distributions are to a
// reference configuration's (the base with its adapters applied at run time,
// in float: what was trained), position by position, on a suite's prompts.
//
// The reference is computed once (compute_reference) and stored by the
// caller (write_reference: the reference_logits step's cached output,
// docs/formats/reference-logits.md). For each case it holds the token
// sequence: the rendered chat prompt followed by the reference's own greedy
// reply (at most `continuation_tokens` tokens), and the reference's raw
// logits at the scored positions: from the last prompt token to the end of
// the reply, i.e. the positions that predict each token of the reply and
// what follows it. A candidate is then teacher-forced over the same tokens
// (measure_fidelity), so both are compared on the same contexts, the way
// llama.cpp's `llama-perplexity --kl-divergence` compares a quantized model
// with its f16 model.
//
// Per position: KL(P_ref || P_candidate) = sum_i p_i (log p_i - log q_i),
// with both log-softmaxes taken in double from raw logits (identical logits
// give exactly 0), and top-1 agreement (the two argmaxes are the same
// token). The report holds the mean and maximum KL and the fraction of
// positions that agree, overall and per case.
//
// Pure functions besides the engine calls; not thread-safe per engine.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/result.h"
#include "gate/suite.h"

namespace mb::inference {
class Engine;
}

namespace mb::gate {

// log(softmax(logits)), in double. REQUIRES: logits non-empty and finite.
std::vector<double> log_softmax(std::span<const float> logits);
// KL(P || Q) of two log-probability vectors of the same length (>= 0 up to
// rounding; exactly 0 when they are identical).
double kl_divergence(std::span<const double> log_p, std::span<const double> log_q);
// Index of the largest value (the first one on a tie).
size_t argmax(std::span<const float> values);

struct ReferenceCase {
  std::string prompt;
  std::vector<int32_t> tokens;  // prompt followed by the reference's reply
  int64_t first_scored = 0;     // position of the last prompt token
  std::vector<float> logits;    // [tokens.size() - first_scored, vocab], raw
  int64_t scored() const { return static_cast<int64_t>(tokens.size()) - first_scored; }
};

struct ReferenceLogits {
  int64_t vocab = 0;
  int continuation_tokens = 0;
  std::vector<ReferenceCase> cases;
  int64_t positions() const;
};

// The reference on every case of `suite` (system prompt, tools and user
// prompt rendered as the native runner renders them).
Result<ReferenceLogits> compute_reference(inference::Engine& reference, const Suite& suite, int continuation_tokens);

// As a safetensors file (docs/formats/reference-logits.md); read_reference
// errors are kCorrupt naming the file.
Status write_reference(FileSystem& fs, const fs::path& path, const ReferenceLogits& ref);
Result<ReferenceLogits> read_reference(const FileSystem& fs, const fs::path& path);

struct FidelityFigures {
  double mean_kl = 0;
  double max_kl = 0;
  double top1_agreement = 0;  // fraction of positions, 0..1
  int64_t positions = 0;
};

// Sums KL and agreement over positions.
class FidelityAccumulator {
 public:
  // REQUIRES: ref_logits.size() == candidate_logits.size() > 0.
  void add(std::span<const float> ref_logits, std::span<const float> candidate_logits);
  FidelityFigures figures() const;

 private:
  double m_kl_sum = 0;
  double m_kl_max = 0;
  int64_t m_agree = 0;
  int64_t m_positions = 0;
};

struct FidelityReport {
  FidelityFigures overall;
  std::vector<std::pair<std::string, FidelityFigures>> cases;  // prompt, figures
  // {"version": 1, "mean_kl", "max_kl", "top1_agreement", "positions",
  //  "cases": [{"prompt", "mean_kl", "max_kl", "top1_agreement", "positions"}]}
  nlohmann::json to_json() const;
};

// Teacher-forces `candidate` over each reference case and compares the
// scored positions. Errors: a vocabulary of another size than the
// reference's, or the engine's own errors.
Result<FidelityReport> measure_fidelity(inference::Engine& candidate, const ReferenceLogits& ref);

}  // namespace mb::gate
