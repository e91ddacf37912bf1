#pragma once
// Rule: one kind of build step (fuse, quantize, gate, command, …).
//
// The engine knows nothing about models. It plans steps, computes their keys,
// and for a cache miss hands a StepContext to the Rule registered for the
// step's kind. A rule reads its inputs (files or directories, already
// resolved to paths), writes its outputs into ctx.output_dir (an empty staging
// directory inside the cache), and may fill ctx.report with metrics. The
// engine then publishes the staging directory atomically, or discards it if
// run() failed. Rules must be deterministic: the same inputs and params give
// the same output bytes (`modelbuild --check` verifies this).
//
// Rules are stateless and shared between threads; run() may be called
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

  const StepInput* input(std::string_view name) const {
    for (const auto& in : inputs)
      if (in.name == name) return &in;
    return nullptr;
  }
  std::vector<const StepInput*> inputs_with_prefix(std::string_view prefix) const {
    std::vector<const StepInput*> out;
    for (const auto& in : inputs)
      if (std::string_view(in.name).substr(0, prefix.size()) == prefix) out.push_back(&in);
    return out;
  }
};

class Rule {
 public:
  virtual ~Rule() = default;
  virtual std::string_view kind() const = 0;
  // Bumped whenever the rule's output bytes change for the same inputs; part
  // of every step key, so a new algorithm never reuses an old result.
  virtual int algorithm_version() const = 0;
  virtual Status run(StepContext& ctx) const = 0;
};

// Rules by kind. Built once at startup (rules/builtin.cc registers the
// built-in ones); read-only afterwards, so lookups need no lock.
class RuleRegistry {
 public:
  void add(std::unique_ptr<Rule> rule);
  const Rule* find(std::string_view kind) const;
  std::vector<std::string> kinds() const;

 private:
  std::map<std::string, std::unique_ptr<Rule>, std::less<>> m_rules;
};

}  // namespace mb
