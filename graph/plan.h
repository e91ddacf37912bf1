#pragma once
// Plan: the step graph for a set of targets.
//
// make_plan() expands each requested target (and every target it depends
// on) into steps: a model target becomes fuse → quantize → gate as its keys
// demand, a command target one command step. Steps are deduplicated
// structurally — two targets that need the same fuse of the same base and
// adapters with the same parameters share one step — so fused_8bit and
// fused_6bit fuse once. A Plan is immutable once made.
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "graph/recipe.h"

namespace mb {

// Where a step input comes from: a recipe source, or another step's output.
struct InputRef {
  std::string role;    // "base", "adapter.0", "model", "suite", …
  std::string source;  // source name, when step < 0
  int step = -1;       // producing step index, or -1 for a source
  bool is_source() const { return step < 0; }
};

struct Step {
  int index = 0;
  std::string kind;  // rule kind
  nlohmann::json params;
  std::vector<InputRef> inputs;
  std::string label;  // "fuse fused_8bit", for people
  std::string slot;   // "fused_8bit/fuse": stable name under which explain remembers it
  std::vector<int> deps() const;
};

// A threshold on a step's report, checked every time the target is built
// (cached reports included). `pointer` is a JSON pointer into the report.
struct Check {
  int step = -1;
  std::string pointer;  // "/accuracy", "/retention/overall"
  double min = 0;
  std::string what;      // "accuracy", "delta retention"
  bool percent = false;  // say the figures as percentages (a fraction of cases)
};

struct TargetPlan {
  std::string name;
  bool is_model = true;
  // The artifact: a step's output, or a source used as is.
  std::optional<InputRef> artifact;
  std::vector<InputRef> runtime_adapters;  // fusion: none
  int gate_step = -1;
  int retention_step = -1;  // the step whose report holds the delta retention, if any
  std::vector<Check> checks;
  std::vector<std::string> depends_on;  // targets whose artifacts this one reads
  std::vector<int> own_steps;           // steps this target adds (not its dependencies')
};

struct Plan {
  std::vector<Step> steps;                    // topologically ordered: deps before users
  std::map<std::string, TargetPlan> targets;  // requested targets and their dependencies
  std::vector<std::string> requested;         // in command-line order

  // All steps needed by `target` including its dependency targets, in order.
  std::vector<int> steps_for(const std::string& target) const;
  // Targets `target` needs, transitively, including itself (dependencies first).
  std::vector<std::string> closure(const std::string& target) const;
};

// `targets` empty means every target in the recipe. Unknown names are an
// Errc::kInvalidInput error with a did-you-mean.
Result<Plan> make_plan(const Recipe& recipe, const std::vector<std::string>& targets);

// Text (one step per line with its inputs) or Graphviz dot.
std::string plan_to_text(const Plan& plan);
std::string plan_to_dot(const Plan& plan);

}  // namespace mb
