#pragma once
// Plan: the step graph for a set of targets.
//
// make_plan() expands each requested target (and every target it depends
// on, dependencies first) into steps through its kind's TargetSpec
// (graph/target_kind.h). Steps are deduplicated structurally: two targets
// that ask for the same step kind with the same parameters on the same
// inputs share one step. (Model targets that fuse to different bits do not:
// each fuses in one streaming pass straight to its bits; see
// docs/ARCHITECTURE.md.) Every step's parameters are checked by its rule
// before the plan is returned. A Plan is immutable once made.
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "graph/recipe.h"

namespace mb {

class Registry;

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
  // Order-only edges: the step starts after these have finished, however
  // they ended (ninja's `||`). Not part of its key; the candidates of a
  // search (below) are ordered this way.
  std::vector<int> after;
  std::vector<int> deps() const;
};

// A threshold on a step's report, checked every time the target is built
// (cached reports included). `pointer` is a JSON pointer into the report,
// taken from the ReportField the step's rule declares.
struct Check {
  int step = -1;
  std::string pointer;   // "/accuracy", "/retention/retained"
  double min = 0;        // the threshold: the value must be at least this,
  bool at_most = false;  // ... or, for a lower-is-better field, at most this
  std::string what;      // the field's name: "accuracy", "delta retention"
  bool percent = false;  // say the figures as percentages (a fraction of cases)
};

// One alternative of a target that searches (e.g. `bits: auto`): an artifact
// and the checks it must pass. A failing check rejects the candidate, not the
// target.
struct Candidate {
  std::string name;  // for people: "4-bit gs64"
  InputRef artifact;
  std::vector<Check> checks;
  std::map<std::string, int, std::less<>> marks;
  std::vector<int> steps;  // the steps it needs beyond the target's own (artifact, checks, marks)
  int marked(std::string_view name) const;
};

struct TargetPlan {
  std::string name;
  std::string kind;  // the TargetKind's name
  // The artifact: a step's output, or a source used as is. Unset for a
  // target with candidates, whose artifact is found by the build: the first
  // candidate (in order) whose checks all pass. Candidates run one after
  // another (order-only edges), and those after the winner never run.
  std::optional<InputRef> artifact;
  std::vector<Candidate> candidates;
  // What a user of the artifact must also read (adapters a model applies at
  // run time); such a target has no single artifact directory.
  std::vector<InputRef> runtime_inputs;
  // Steps the target's kind names for its readers ("gate" → the gate step).
  std::map<std::string, int, std::less<>> marks;
  std::vector<Check> checks;
  std::vector<std::string> depends_on;  // targets whose artifacts this one reads
  std::vector<int> own_steps;           // steps this target adds (not its dependencies')

  // The step marked `name`, or -1.
  int marked(std::string_view name) const;
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
Result<Plan> make_plan(const Recipe& recipe, const Registry& registry, const std::vector<std::string>& targets);

// Text (one step per line with its inputs) or Graphviz dot.
std::string plan_to_text(const Plan& plan);
std::string plan_to_dot(const Plan& plan);

}  // namespace mb
