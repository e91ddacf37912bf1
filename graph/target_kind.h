#pragma once
// TargetKind: a kind of recipe target (a model, a command, …), the planning
// half of the plug-in seam whose execution half is Rule (graph/rule.h).
//
// The engine owns the recipe's frame (version, sources, defaults, targets),
// references between targets, cycles, planning order and step
// deduplication. Everything inside one target belongs to its kind:
//   - which keys it owns (keys()), with their validation and errors, through
//     a TargetReader that names file:line:col and suggests a key on a typo;
//   - how a parsed target expands into steps (TargetSpec::expand), through a
//     TargetExpansion that adds steps, names the artifact and adds checks on
//     the report fields a step's rule declares.
// A kind is chosen by its marker key: a target with `base:` is a model
// target, one with `command:` a command target. Adding a kind is new files in
// rules/ and one registration line in rules/builtin.cc; graph/ names none.
//
// Kinds and specs are immutable once made and shared between threads.
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/fs.h"
#include "base/result.h"
#include "base/yaml_reader.h"
#include "graph/plan.h"
#include "graph/recipe.h"

namespace mb {

// One target's YAML map, with typed getters whose errors name the position
// of the offending value. Keys listed as default keys fall back to the
// recipe's `defaults:` map. Every source or target name read through
// reference()/reference_list() is recorded, so the engine can check that it
// exists and report it at its own position.
class TargetReader {
 public:
  TargetReader(const YamlReader& yaml, std::string target, YAML::Node node, YAML::Node defaults,
               std::vector<std::string> default_keys);

  const std::string& target() const { return m_target; }
  Location location() const { return location_of(m_node); }
  Location location_of(const YAML::Node& node) const;
  const YamlReader& yaml() const { return m_yaml; }

  // The value of `key`: the target's own, else the default's (for default
  // keys); an undefined node when neither has it.
  YAML::Node get(std::string_view key) const;
  // get(key) is defined and not null.
  bool has(std::string_view key) const;
  // The target itself sets `key` (defaults do not count).
  bool has_own(std::string_view key) const;

  Result<std::string> string(std::string_view key) const;
  Result<int64_t> integer(std::string_view key) const;
  Result<double> number(std::string_view key) const;
  Result<double> fraction(std::string_view key) const;  // a number in [0, 1]
  Result<std::vector<std::string>> string_list(std::string_view key) const;
  // A string that must be one of `choices` (with a did-you-mean).
  Result<std::string> one_of(std::string_view key, const std::vector<std::string>& choices) const;

  // A source or target name (recorded as a reference).
  Result<std::string> reference(std::string_view key);
  Result<std::vector<std::string>> reference_list(std::string_view key);
  // The same for a value inside a nested map (e.g. gate.suite).
  Result<std::string> reference_at(const YAML::Node& node, const std::string& key);
  // A name the target refers to without a key of its own (e.g. command
  // inputs given as a map).
  void add_reference(std::string name, const YAML::Node& node);

  Error error(std::string_view key, std::string message) const;  // at the key's value
  Error error(std::string message) const;                        // at the target

  const std::vector<TargetRef>& references() const { return m_refs; }

 private:
  const YamlReader& m_yaml;
  std::string m_target;
  YAML::Node m_node;
  YAML::Node m_defaults;
  std::vector<std::string> m_default_keys;
  std::vector<TargetRef> m_refs;
};

// What a TargetSpec sees while it is expanded into steps. Targets are
// expanded dependencies first, so every target this one refers to is
// already planned.
class TargetExpansion {
 public:
  virtual ~TargetExpansion() = default;
  virtual const std::string& target() const = 0;
  virtual const Location& location() const = 0;

  // An input naming a source, or the artifact of a target planned before.
  // Errors when the target has no artifact.
  virtual Result<InputRef> resolve(const std::string& ref, const std::string& role) = 0;
  // The plan of another target; nullptr when `name` is a source.
  virtual const TargetPlan* target_plan(const std::string& name) const = 0;
  // Adds a step of `kind` (or finds the identical one another target added)
  // and returns its index. `role` names it for people: "fuse fused_8bit".
  virtual int add_step(std::string kind, nlohmann::json params, std::vector<InputRef> inputs,
                       const std::string& role) = 0;
  // The plan being built: set artifact, runtime_inputs and marks here.
  virtual TargetPlan& plan() = 0;
  // A threshold: the report field `field` (one the step's rule declares) of
  // `step` must be at least `min` each time the target is built (at most, for
  // a field the rule says is lower-is-better).
  virtual Status add_check(int step, std::string_view field, double min) = 0;
  // The same check, for a candidate's own list (Candidate::checks).
  virtual Result<Check> make_check(int step, std::string_view field, double min) = 0;
  // An order-only edge: `step` starts after `before` has finished.
  virtual void order_after(int step, int before) = 0;
};

// A source's path on disk (a git pin already resolved), for preflight(); an
// empty path when `name` is a target, not a source.
using SourcePathFn = std::function<Result<fs::path>(const std::string& name)>;

// A parsed target, immutable.
class TargetSpec {
 public:
  virtual ~TargetSpec() = default;
  virtual Status expand(TargetExpansion& x) const = 0;
  // What can be found wrong in the sources' contents without running a step
  // (a base whose architecture the gate's engine cannot run, a tokenizer.json
  // that does not parse). The builder calls it once, before the first step of
  // a build executes (never when every step is cached, so a no-op build pays
  // nothing). Errors are bad input (exit 2) naming the user's files.
  virtual Status preflight(const FileSystem& fs, const SourcePathFn& source_path) const {
    (void)fs;
    (void)source_path;
    return {};
  }
};

class TargetKind {
 public:
  virtual ~TargetKind() = default;
  // For messages and TargetPlan::kind: "model", "command".
  virtual std::string_view name() const = 0;
  // The key whose presence makes a target one of this kind.
  virtual std::string_view marker_key() const = 0;
  // Every key this kind reads in a target (the marker key included); the
  // engine rejects any other key with a did-you-mean before parse() runs.
  virtual std::vector<std::string> keys() const = 0;
  // The keys that may also be given once for all targets under `defaults:`.
  virtual std::vector<std::string> default_keys() const { return {}; }
  virtual Result<std::shared_ptr<const TargetSpec>> parse(TargetReader& reader) const = 0;
};

}  // namespace mb
