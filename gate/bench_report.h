#pragma once
// The bench's outputs: one row per configuration rendered as a Markdown
// table, as JSON, and as a hand-written SVG chart of accuracy against size
// on disk. Rendering is pure (no clocks, no I/O) so the same rows always give
// the same bytes.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace mb::gate {

enum class GateOutcome { kNone, kPassed, kFailed };
const char* gate_outcome_name(GateOutcome g);

struct BenchRow {
  std::string config;              // target name
  std::string bits;                // "4", "8", "float16", …
  uint64_t size_bytes = 0;         // on disk, each hard-linked file once
  uint64_t peak_memory_bytes = 0;  // max RSS of the process that ran the suite
  double load_seconds = 0;
  double avg_generation_seconds = 0;
  double tokens_per_second = 0;
  double accuracy = 0;  // 0..1
  int passed = 0, total = 0;
  std::string accuracy_source;      // "gate" (the cached verdict) or "bench"
  std::optional<double> retention;  // delta retention, where it applies
  // Fidelity against the target's reference (gate/fidelity.h), where it applies.
  std::optional<double> mean_kl, max_kl, top1_agreement;
  std::string fidelity_source;  // "fidelity" (the cached step) or "bench"
  GateOutcome gate = GateOutcome::kNone;
  std::optional<double> min_accuracy;  // the gate's threshold, if any
  std::vector<std::string> failures;   // why the gate or build failed
};

// "1.2 MB", "604 KB": binary units, one decimal.
std::string human_bytes(uint64_t bytes);

// | config | bits | size | peak mem | load s | gen s | tok/s | accuracy | retention | mean KL | top-1 | gate |
std::string render_markdown(const std::vector<BenchRow>& rows);

// {"version": 1, "configs": [{"config", "bits", "size_bytes", …}]}
nlohmann::json render_json(const std::vector<BenchRow>& rows);

// Scatter chart: x = size on disk (log scale when sizes span more than 4×),
// y = accuracy %, one labelled point per row, green when the gate passed (or
// there is none and accuracy met the threshold), red otherwise, and a dashed
// line at the (highest) gate threshold.
std::string render_svg(const std::vector<BenchRow>& rows);

// Text escaped for XML character data and attribute values.
std::string xml_escape(const std::string& s);

}  // namespace mb::gate
