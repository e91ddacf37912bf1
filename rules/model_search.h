#pragma once
// The searching model targets (docs/recipes.md, "bits: auto" and
// "gguf_type: auto"): instead of one artifact, candidates tried from the
// smallest on disk upward, the first whose checks all pass being the
// artifact (TargetPlan::candidates). Each candidate is ordinary cached
// steps (a fuse to MLX bits, or a GGUF export), its delta retention check,
// its fidelity step and its gate; each waits (order-only) for the one
// before to be judged, so candidates past the winner never run.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "graph/target_kind.h"
#include "rules/model_target.h"

namespace mb {

// bits: auto's default (bits, group size) pairs: the widths the seeds asked
// about, each at the group size MLX uses for it.
extern const std::vector<std::pair<int, int>> kDefaultBitsCandidates;
// gguf_type: auto's default GGUF types: every quantized type an export writes.
extern const std::vector<std::string> kDefaultGgufCandidates;

// The order key of a GGUF candidate: its main block type's bits per weight
// (Q4_0 and Q4_K 4.5, Q5_K 5.5, Q6_K 6.5625, Q8_0 8.5, floats 16), plus a
// quarter bit for the _M mixes, which store some tensors (attn_v, ffn_down,
// output) one type larger, so that Q4_K_M comes after Q4_0.
double gguf_nominal_bits(std::string_view gguf_type);

// bits: auto: one fuse to (bits, group size) per candidate.
Status expand_bits_search(const ModelSpec& m, TargetExpansion& x, const InputRef& base,
                          const std::vector<InputRef>& adapters, const std::optional<double>& min_retention);
// gguf_type: auto: one GGUF export per type, of `model` (no adapters) or of
// base + adapters fused in the export's own pass (which measures the delta
// retention).
Status expand_gguf_search(const ModelSpec& m, TargetExpansion& x, const InputRef& model, const InputRef& base,
                          const std::vector<InputRef>& adapters, const std::optional<double>& min_retention);

}  // namespace mb
