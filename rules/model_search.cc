#include "rules/model_search.h"

#include <algorithm>

#include "rules/export.h"
#include "rules/fidelity.h"
#include "rules/fuse.h"
#include "rules/gate.h"
#include "rules/model_params.h"

namespace mb {

const std::vector<std::pair<int, int>> kDefaultBitsCandidates = {{3, 32}, {4, 32}, {4, 64}, {5, 64}, {6, 64}, {8, 64}};
const std::vector<std::string> kDefaultGgufCandidates = {"Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"};

double gguf_nominal_bits(std::string_view t) {
  const double mix = t.ends_with("_M") ? 0.25 : 0.0;
  if (t.starts_with("Q4_")) return 4.5 + mix;
  if (t.starts_with("Q5_")) return 5.5 + mix;
  if (t.starts_with("Q6_")) return 6.5625 + mix;
  if (t.starts_with("Q8_")) return 8.5 + mix;
  return 16;  // F16, BF16
}

namespace {

// Bits per weight of an MLX-quantized matrix: the codes, plus a 16-bit scale
// and bias per group (the estimate bits: auto orders candidates by).
double bits_per_weight(const std::pair<int, int>& c) { return c.first + 32.0 / c.second; }

// What judges one candidate whose artifact is step `made` (which reports
// the delta retention when `measures_retention`): the retention check, the
// fidelity step (before the gate: a forward pass per case is cheaper than
// a generation, and may spare it) and the gate, all after the candidate
// before (`before`, updated to this candidate's steps).
Status judge_candidate(const ModelSpec& m, TargetExpansion& x, Candidate& c, int made, bool measures_retention,
                       const InputRef& base, const std::vector<InputRef>& adapters,
                       const std::optional<double>& min_retention, const std::string& tag, std::vector<int>& before) {
  c.artifact = InputRef{"model", "", made};
  if (measures_retention) {
    c.marks[kRetentionMark] = made;
    if (min_retention) {
      MB_ASSIGN(Check retention, x.make_check(made, kDeltaRetention, *min_retention));
      c.checks.push_back(std::move(retention));
    }
  }
  MB_ASSIGN(GateStep g, add_gate_step(x, *m.gate, c.artifact, {}, "gate " + tag));
  c.marks[kGateMark] = g.step;
  MB_ASSIGN(FidelityStep f, add_fidelity_step(x, *m.gate, base, adapters, c.artifact, {}, "fidelity " + tag));
  c.checks.insert(c.checks.end(), f.checks.begin(), f.checks.end());
  c.checks.push_back(g.accuracy);
  for (int b : before) x.order_after(made, b);
  before = {made, g.step};
  if (f.step >= 0) {
    c.marks[kFidelityMark] = f.step;
    x.order_after(g.step, f.step);
    before.push_back(f.step);
  }
  return {};
}

}  // namespace

Status expand_bits_search(const ModelSpec& m, TargetExpansion& x, const InputRef& base,
                          const std::vector<InputRef>& adapters, const std::optional<double>& min_retention) {
  std::vector<std::pair<int, int>> order = m.candidates;
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return std::make_pair(bits_per_weight(a), a.first) < std::make_pair(bits_per_weight(b), b.first);
  });
  std::vector<InputRef> in = {base};
  in.insert(in.end(), adapters.begin(), adapters.end());
  std::vector<int> before;
  for (const auto& [bits, gs] : order) {
    const std::string tag = fmt::format("{}bit-gs{}", bits, gs);
    FuseParams p;
    p.dtype = m.dtype.value_or("auto");
    p.bits = bits;
    p.group_size = gs;
    p.quantizer = m.quantizer;
    Candidate c;
    c.name = fmt::format("{}-bit gs{}", bits, gs);
    // Steps are shared with any target fusing to the same bits.
    const int fuse = x.add_step("fuse", p.to_json(), in, "fuse " + tag);
    MB_TRY(judge_candidate(m, x, c, fuse, true, base, adapters, min_retention, tag, before));
    x.plan().candidates.push_back(std::move(c));
  }
  return {};
}

Status expand_gguf_search(const ModelSpec& m, TargetExpansion& x, const InputRef& model, const InputRef& base,
                          const std::vector<InputRef>& adapters, const std::optional<double>& min_retention) {
  std::vector<std::string> order = m.gguf_candidates;
  std::stable_sort(order.begin(), order.end(), [](const std::string& a, const std::string& b) {
    return gguf_nominal_bits(a) < gguf_nominal_bits(b);
  });
  const bool one_pass = !adapters.empty();  // fuses, and measures the retention
  std::vector<InputRef> in = {model};
  if (one_pass) {
    in = {base};
    in.insert(in.end(), adapters.begin(), adapters.end());
  }
  std::vector<int> before;
  for (const std::string& type : order) {
    ExportParams p;
    p.format = "gguf";
    p.gguf_type = type;
    if (one_pass) p.fuse_dtype = m.dtype.value_or("auto");
    Candidate c;
    c.name = type;
    // The same step as a target with this gguf_type: shared with it.
    const int step = x.add_step("export", p.to_json(), in, "export " + type);
    MB_TRY(judge_candidate(m, x, c, step, one_pass, base, adapters, min_retention, type, before));
    x.plan().candidates.push_back(std::move(c));
  }
  return {};
}

}  // namespace mb
