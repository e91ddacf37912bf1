#pragma once
// Rule: one kind of build step (fuse, quantize, gate, command, …).
//
// The engine knows nothing about models. It plans steps, computes their keys,
// and for a cache miss hands a StepContext to the Rule registered for the
// step's kind. A rule reads its inputs (files or directories, already
// resolved to paths), writes its outputs into ctx.output_dir (an empty staging
// directory inside the cache), and may fill ctx.report with metrics. The
// engine then publishes the staging directory atomically, or discards it if
// run() failed or threw. Rules must be deterministic: the same inputs and
// params give the same output bytes (`modelbuild --check` verifies this).
//
// Besides running, a rule tells the engine what it needs to plan and check
// its steps without running them: whether a step's parameters are well formed
// (check_params), which report fields a threshold may read (report_fields),
// whether it judges an artifact rather than making one (judges), and which
// files outside the recipe its output depends on (tool_inputs).
//
// Rules are stateless and shared between threads; every method may be called
// concurrently for different steps.
#include <atomic>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/fs.h"
#include "base/reporter.h"
#include "base/result.h"
#include "cache/digest.h"

namespace mb {

struct StepInput {
  std::string name;  // role, e.g. "base", "adapter.0", "model", "suite"
  fs::path path;     // a file or a directory, read-only
  Digest digest;     // content digest of that file or tree
};

// Finds inputs by role in a list of them.
const StepInput* find_input(const std::vector<StepInput>& inputs, std::string_view name);
std::vector<const StepInput*> find_inputs_with_prefix(const std::vector<StepInput>& inputs, std::string_view prefix);

struct StepContext {
  FileSystem& fs;
  Reporter& reporter;
  std::string step_label;  // for messages: "fuse fused_8bit"
  const nlohmann::json& params;
  const std::vector<StepInput>& inputs;
  fs::path output_dir;  // empty directory to write outputs into
  fs::path work_dir;    // the recipe's directory (commands run here)
  int threads = 1;      // cores this step may use
  const std::atomic<bool>* cancelled = nullptr;
  nlohmann::json report = nlohmann::json::object();  // metrics, kept with the output

  const StepInput* input(std::string_view name) const { return find_input(inputs, name); }
  std::vector<const StepInput*> inputs_with_prefix(std::string_view prefix) const {
    return find_inputs_with_prefix(inputs, prefix);
  }
};

// A number in a step's report that a threshold may be checked against.
struct ReportField {
  std::string name;      // what recipes and messages call it: "accuracy"
  std::string pointer;   // JSON pointer into the report: "/accuracy"
  bool percent = false;  // say it as a percentage (a fraction of cases)
  // A threshold on this field is a maximum, not a minimum (a divergence).
  bool lower_is_better = false;
};

class Rule {
 public:
  virtual ~Rule() = default;
  virtual std::string_view kind() const = 0;
  // Bumped whenever the rule's output bytes change for the same inputs; part
  // of every step key, so a new algorithm never reuses an old result.
  virtual int algorithm_version() const = 0;
  virtual Status run(StepContext& ctx) const = 0;

  // Parses `params` the way run() will; an unknown or ill-typed parameter is
  // an error. Planners build params, so a failure here is a bug in a planner;
  // the engine checks every step of a plan before anything runs.
  virtual Status check_params(const nlohmann::json& params) const = 0;
  // The report fields checks may read. A check against any other field is a
  // planning error.
  virtual std::vector<ReportField> report_fields() const { return {}; }
  // True for steps that judge an artifact rather than make one (the gate):
  // `--regate` re-runs them even when a verdict is cached.
  virtual bool judges() const { return false; }
  // Files outside the recipe whose content the output depends on (the
  // executable a command runs), resolved now; each becomes a key input named
  // "tool.N", so a different tool on another machine gives another key.
  virtual Result<std::vector<fs::path>> tool_inputs(const nlohmann::json& params, const fs::path& work_dir) const {
    (void)params;
    (void)work_dir;
    return std::vector<fs::path>{};
  }
};

}  // namespace mb
