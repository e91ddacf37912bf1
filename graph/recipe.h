#pragma once
// Recipe: the parsed, validated form of modelbuild.yaml.
//
// A recipe declares sources (files or directories on disk, or pinned in git)
// and targets. The engine parses the frame: `version`, `sources`,
// `defaults` and `targets`, checks names, references and cycles. Each target
// is parsed by the TargetKind (graph/target_kind.h) whose marker key it has:
// a model target (`base:`), a command target (`command:`), or any kind a
// plug-in registers. parse_recipe() validates everything before anything
// runs: unknown keys (with a did-you-mean), wrong types, missing sources,
// unknown references, cycles and duplicate names are all errors that name
// file:line:column and the key. The format is specified in docs/recipes.md.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/result.h"

namespace mb {

class Registry;
class TargetSpec;

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

// A source or target name a target refers to, and where it says so.
struct TargetRef {
  std::string name;
  Location where;
};

struct TargetDecl {
  std::string name;
  Location loc;
  std::string kind;                        // the TargetKind's name: "model", "command", …
  std::shared_ptr<const TargetSpec> spec;  // what the kind parsed
  std::vector<TargetRef> refs;             // every name it refers to, in the order read

  // Every source or target name this target refers to.
  std::vector<std::string> references() const;
  // The kind's own view of the target, e.g. as<ModelSpec>(); nullptr when it
  // is another kind.
  template <typename T>
  const T* as() const {
    return dynamic_cast<const T*>(spec.get());
  }
};

struct Recipe {
  fs::path file;  // absolute path of the recipe
  fs::path dir;   // its directory: relative paths resolve here
  std::map<std::string, SourceDecl> sources;
  std::vector<TargetDecl> targets;  // in file order

  const TargetDecl* find_target(std::string_view name) const;
  const SourceDecl* find_source(std::string_view name) const;
};

// Reads and validates `file` with the target kinds of `registry`. Errors are
// Errc::kInvalidInput (exit 2) with Error::where = "file:line:col".
Result<Recipe> parse_recipe(const FileSystem& fs, const fs::path& file, const Registry& registry);
// Same, from text; `file` is used for messages and to resolve relative paths.
Result<Recipe> parse_recipe_text(const FileSystem& fs, std::string_view text, const fs::path& file,
                                 const Registry& registry);

}  // namespace mb
