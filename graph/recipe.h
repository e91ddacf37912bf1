#pragma once
// Recipe: the parsed, validated form of modelbuild.yaml.
//
// A recipe declares sources (files or directories on disk, or pinned in git)
// and targets. A model target names a base model, adapters (in order), a
// fusion mode, target bits, group size, dtype, and an optional gate; a
// command target wires an external tool into the graph with declared inputs
// and outputs. parse_recipe() validates everything before anything runs:
// unknown keys (with a did-you-mean), wrong types, missing sources, unknown
// references, cycles and duplicate names are all errors that name
// file:line:column and the key. The format is specified in docs/recipes.md.
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/fs.h"
#include "base/result.h"
#include "base/yaml_reader.h"

namespace mb {

struct Location {
  std::string file;
  int line = 0;    // 1-based; 0 = unknown
  int column = 0;  // 1-based
  std::string str() const;
};

struct GitPin {
  std::string repo;  // path to the repository (relative to the recipe dir)
  std::string rev;   // any revision git understands
  std::string path;  // path inside the commit
};

struct SourceDecl {
  std::string name;
  fs::path path;  // absolute; for git sources, the repo path
  std::optional<GitPin> git;
  Location loc;
};

enum class Fusion { kDequantize, kInplace, kNone };
const char* fusion_name(Fusion f);

struct GateDecl {
  std::string suite;  // a source or target name
  double min_accuracy = 1.0;
  std::optional<double> min_delta_retention;
  nlohmann::json runner = {{"type", "native"}};
  Location loc;
};

struct ModelTarget {
  std::string base;                   // source or target name
  std::vector<std::string> adapters;  // source or target names, applied in order
  Fusion fusion = Fusion::kDequantize;
  std::optional<int> bits;  // nullopt = float
  int group_size = 64;
  std::optional<std::string> dtype;  // "float16", "bfloat16", "float32"
  std::string quantizer = "gpu";     // "gpu" (mlx_lm.convert on a Mac) or "cpu"
  std::optional<double> min_delta_retention;
  std::optional<GateDecl> gate;
};

struct CommandTarget {
  // Exactly one of argv (a YAML list) or shell (a string run by /bin/sh -c).
  std::vector<std::string> argv;
  std::string shell;
  std::map<std::string, std::string> inputs;  // role -> source or target name
  std::vector<std::string> outputs;           // relative paths the command must create in {out}
};

struct TargetDecl {
  std::string name;
  Location loc;
  std::variant<ModelTarget, CommandTarget> body;

  bool is_model() const { return std::holds_alternative<ModelTarget>(body); }
  const ModelTarget& model() const { return std::get<ModelTarget>(body); }
  const CommandTarget& command() const { return std::get<CommandTarget>(body); }
  // Every source or target name this target refers to.
  std::vector<std::string> references() const;
};

struct Recipe {
  fs::path file;  // absolute path of the recipe
  fs::path dir;   // its directory: relative paths resolve here
  std::map<std::string, SourceDecl> sources;
  std::vector<TargetDecl> targets;  // in file order

  const TargetDecl* find_target(std::string_view name) const;
  const SourceDecl* find_source(std::string_view name) const;
};

// Reads and validates `file`. Errors are Errc::kInvalidInput (exit 2) with
// Error::where = "file:line:col".
Result<Recipe> parse_recipe(const FileSystem& fs, const fs::path& file);
// Same, from text; `file` is used for messages and to resolve relative paths.
Result<Recipe> parse_recipe_text(const FileSystem& fs, std::string_view text, const fs::path& file);

}  // namespace mb
