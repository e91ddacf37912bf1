#pragma once
// The command target kind (`command:`) and its step kind "command": an
// external tool as a build step, e.g. mlx_lm.convert or llama.cpp's
// converter, so any tool can sit in the graph.
//
// Recipe keys: command (a list of words, or a string run by /bin/sh -c),
// inputs (a list of names, or a map role -> name), outputs (relative paths the
// command creates under {out}), tool_version (optional). Placeholders in the
// command: {out} is the step's output directory, {NAME} (or {in.NAME}) the
// path of input NAME, {{ a literal brace; an unknown placeholder is an error
// when the recipe is read. The command runs in the recipe's directory with
// MODELBUILD_OUT set; it must create every declared output under {out};
// anything else it leaves there is removed, so the cached result holds
// exactly what was declared.
//
// The step key covers the tool itself (remote caches share results across
// machines): with tool_version, that declared string; otherwise the
// executable's resolved path and content digest (docs/remote-cache.md).
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "graph/rule.h"
#include "graph/target_kind.h"

namespace mb {

struct CommandParams {
  std::vector<std::string> argv;  // exactly one of argv and shell
  std::string shell;
  std::vector<std::string> outputs;
  std::optional<std::string> tool_version;

  nlohmann::json to_json() const;
  static Result<CommandParams> parse(const nlohmann::json& params);
};

class CommandRule : public Rule {
 public:
  std::string_view kind() const override { return "command"; }
  int algorithm_version() const override { return 1; }
  Status run(StepContext& ctx) const override;
  Status check_params(const nlohmann::json& params) const override;
  Result<std::vector<fs::path>> tool_inputs(const nlohmann::json& params, const fs::path& work_dir) const override;
};

class CommandTargetKind : public TargetKind {
 public:
  std::string_view name() const override { return "command"; }
  std::string_view marker_key() const override { return "command"; }
  std::vector<std::string> keys() const override { return {"command", "inputs", "outputs", "tool_version"}; }
  Result<std::shared_ptr<const TargetSpec>> parse(TargetReader& reader) const override;
};

// Replaces {out}, {NAME} and {in.NAME} with out_dir and input_path(NAME)
// (nullopt: no such input); an unknown placeholder is an error naming it.
Result<std::string> expand_placeholders(
    std::string_view text, const std::string& out_dir,
    const std::function<std::optional<std::string>(const std::string&)>& input_path);

// The executable `word` names, as execvp would find it: a path with a slash
// relative to `work_dir`, else the first match on PATH; nullopt when none.
std::optional<fs::path> resolve_executable(const std::string& word, const fs::path& work_dir);

}  // namespace mb
