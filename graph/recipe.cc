// Parsing and validating modelbuild.yaml's frame; each target's own keys are
// parsed by its TargetKind. See docs/recipes.md for the format.
#include "graph/recipe.h"

#include <algorithm>
#include <functional>
#include <set>

#include "base/yaml_reader.h"
#include "graph/registry.h"
#include "graph/target_kind.h"

namespace mb {
namespace {

const std::vector<std::string> kTopKeys = {"version", "sources", "defaults", "targets"};
const std::vector<std::string> kSourceKeys = {"path", "git"};
const std::vector<std::string> kGitKeys = {"repo", "rev", "path"};

bool valid_name(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  return name != "." && name != "..";
}

std::vector<std::string> collect_keys(const YAML::Node& map) {
  std::vector<std::string> keys;
  if (map.IsMap())
    for (auto it = map.begin(); it != map.end(); ++it)
      if (it->first.IsScalar()) keys.push_back(it->first.Scalar());
  return keys;
}

std::string hint(const std::string& word, const std::vector<std::string>& candidates) {
  std::string h = did_you_mean(word, candidates);
  return h.empty() ? "" : fmt::format(" (did you mean '{}'?)", h);
}

class Parser {
 public:
  Parser(const FileSystem& fs, const fs::path& file, const Registry& registry)
      : m_fs(fs), m_registry(registry), m_y(file.string()) {
    m_recipe.file = fs::absolute(file).lexically_normal();
    m_recipe.dir = m_recipe.file.parent_path();
    for (const auto& kind : registry.target_kinds())
      for (const auto& key : kind->default_keys())
        if (std::find(m_default_keys.begin(), m_default_keys.end(), key) == m_default_keys.end())
          m_default_keys.push_back(key);
  }

  Result<Recipe> parse(std::string_view text) {
    MB_ASSIGN(YAML::Node root, load_yaml(text, m_y.file()));
    if (!root.IsDefined() || root.IsNull()) return make_error(Errc::kInvalidInput, m_y.file(), "recipe is empty");
    MB_TRY(m_y.check_keys(root, "the recipe", kTopKeys));
    if (root["version"]) {
      MB_ASSIGN(int64_t v, m_y.integer(root["version"], "version"));
      if (v != 1)
        return m_y.error(root["version"], fmt::format("unsupported recipe version {} (this modelbuild reads 1)", v));
    }
    if (root["sources"]) MB_TRY(parse_sources(root["sources"]));
    if (root["defaults"]) {
      MB_TRY(m_y.check_keys(root["defaults"], "defaults", m_default_keys));
      m_defaults = root["defaults"];
    }
    if (!root["targets"]) return m_y.error(root, "the recipe declares no 'targets'");
    MB_TRY(parse_targets(root["targets"]));
    MB_TRY(check_references());
    MB_TRY(check_cycles());
    return std::move(m_recipe);
  }

 private:
  Status parse_sources(const YAML::Node& node) {
    MB_TRY(m_y.check_keys(node, "sources", collect_keys(node)));
    for (auto it = node.begin(); it != node.end(); ++it) {
      SourceDecl src;
      src.name = it->first.Scalar();
      src.loc = location(it->first);
      if (!valid_name(src.name))
        return m_y.error(it->first, fmt::format("invalid source name '{}' (use letters, digits, _ - .)", src.name));
      const YAML::Node v = it->second;  // a handle: it->second is a temporary
      MB_TRY(parse_source(v, src));
      m_recipe.sources[src.name] = std::move(src);
    }
    return {};
  }

  Status parse_source(const YAML::Node& v, SourceDecl& src) {
    YAML::Node path_node = v;
    if (v.IsMap()) {
      MB_TRY(m_y.check_keys(v, fmt::format("source '{}'", src.name), kSourceKeys));
      if (v["git"] && v["path"])
        return m_y.error(v, fmt::format("source '{}': give either 'path' or 'git', not both", src.name));
      if (v["git"]) return parse_git(v["git"], src);
      if (!v["path"]) return m_y.error(v, fmt::format("source '{}' needs 'path' or 'git'", src.name));
      path_node = v["path"];
    }
    MB_ASSIGN(std::string rel, m_y.string(path_node, "path"));
    if (rel.empty()) return m_y.error(path_node, fmt::format("source '{}': empty path", src.name));
    src.path = (m_recipe.dir / rel).lexically_normal();
    if (!m_fs.stat(src.path).ok())
      return m_y.error(path_node, fmt::format("source '{}': {} does not exist", src.name, src.path.string()));
    return {};
  }

  Status parse_git(const YAML::Node& g, SourceDecl& src) {
    MB_TRY(m_y.check_keys(g, fmt::format("source '{}' git", src.name), kGitKeys));
    GitPin pin;
    for (const char* key : {"repo", "rev", "path"}) {
      if (!g[key]) return m_y.error(g, fmt::format("source '{}': git needs '{}'", src.name, key));
    }
    MB_ASSIGN(pin.repo, m_y.string(g["repo"], "repo"));
    MB_ASSIGN(pin.rev, m_y.string(g["rev"], "rev"));
    MB_ASSIGN(pin.path, m_y.string(g["path"], "path"));
    src.path = (m_recipe.dir / pin.repo).lexically_normal();
    if (!m_fs.stat(src.path).ok())
      return m_y.error(g["repo"],
                       fmt::format("source '{}': repository {} does not exist", src.name, src.path.string()));
    src.git = std::move(pin);
    return {};
  }

  Status parse_targets(const YAML::Node& node) {
    MB_TRY(m_y.check_keys(node, "targets", collect_keys(node)));
    if (node.size() == 0) return m_y.error(node, "'targets' is empty");
    for (auto it = node.begin(); it != node.end(); ++it) {
      TargetDecl t;
      t.name = it->first.Scalar();
      t.loc = location(it->first);
      if (!valid_name(t.name))
        return m_y.error(it->first, fmt::format("invalid target name '{}' (use letters, digits, _ - .)", t.name));
      if (m_recipe.sources.count(t.name))
        return m_y.error(it->first, fmt::format("'{}' is both a source and a target", t.name));
      const YAML::Node v = it->second;  // a handle: it->second is a temporary
      MB_TRY(m_y.expect_map(v, fmt::format("target '{}'", t.name)));
      MB_ASSIGN(const TargetKind* kind, kind_of(v, it->first, t.name));
      MB_TRY(m_y.check_keys(v, fmt::format("{} target '{}'", kind->name(), t.name), kind->keys()));
      TargetReader reader(m_y, t.name, v, m_defaults, kind->default_keys());
      MB_ASSIGN(t.spec, kind->parse(reader));
      t.kind = std::string(kind->name());
      t.refs = reader.references();
      m_recipe.targets.push_back(std::move(t));
    }
    return {};
  }

  // The one kind whose marker key the target has.
  Result<const TargetKind*> kind_of(const YAML::Node& v, const YAML::Node& name_node, const std::string& name) {
    std::vector<const TargetKind*> found;
    for (const auto& kind : m_registry.target_kinds())
      if (v[std::string(kind->marker_key())]) found.push_back(kind.get());
    if (found.size() == 1) return found[0];
    if (found.size() > 1)
      return m_y.error(name_node,
                       fmt::format("target '{}' has both '{}' ({} target) and '{}' ({} target)", name,
                                   found[0]->marker_key(), found[0]->name(), found[1]->marker_key(), found[1]->name()));
    // Most likely a misspelled key: say which one before anything else.
    std::vector<std::string> any;
    std::string markers;
    for (const auto& kind : m_registry.target_kinds()) {
      for (const auto& key : kind->keys()) any.push_back(key);
      markers += fmt::format("{}'{}' (a {} target)", markers.empty() ? "" : " or ", kind->marker_key(), kind->name());
    }
    MB_TRY(m_y.check_keys(v, fmt::format("target '{}'", name), any));
    return m_y.error(name_node, fmt::format("target '{}' needs {}", name, markers));
  }

  Status check_references() {
    std::vector<std::string> names;
    for (const auto& [n, s] : m_recipe.sources) names.push_back(n);
    for (const auto& t : m_recipe.targets) names.push_back(t.name);
    for (const auto& t : m_recipe.targets) {
      for (const auto& ref : t.refs) {
        if (m_recipe.find_source(ref.name) || m_recipe.find_target(ref.name)) continue;
        return Error{Errc::kInvalidInput, ref.where.line > 0 ? ref.where.str() : t.loc.str(),
                     fmt::format("target '{}' refers to '{}', which is neither a source nor a target{}", t.name,
                                 ref.name, hint(ref.name, names))};
      }
    }
    return {};
  }

  Status check_cycles() {
    std::map<std::string, int> state;  // 0 new, 1 on stack, 2 done
    std::vector<std::string> stack;
    std::function<Status(const TargetDecl&)> visit = [&](const TargetDecl& t) -> Status {
      state[t.name] = 1;
      stack.push_back(t.name);
      for (const auto& ref : t.references()) {
        const TargetDecl* dep = m_recipe.find_target(ref);
        if (!dep) continue;
        if (state[dep->name] == 1) {
          auto start = std::find(stack.begin(), stack.end(), dep->name);
          std::string cycle;
          for (auto it = start; it != stack.end(); ++it) cycle += *it + " -> ";
          cycle += dep->name;
          return Error{Errc::kInvalidInput, t.loc.str(), fmt::format("dependency cycle: {}", cycle)};
        }
        if (state[dep->name] == 0) MB_TRY(visit(*dep));
      }
      stack.pop_back();
      state[t.name] = 2;
      return {};
    };
    for (const auto& t : m_recipe.targets)
      if (state[t.name] == 0) MB_TRY(visit(t));
    return {};
  }

  Location location(const YAML::Node& node) const {
    return Location{m_y.file(), node.Mark().line + 1, node.Mark().column + 1};
  }

  const FileSystem& m_fs;
  const Registry& m_registry;
  YamlReader m_y;
  Recipe m_recipe;
  YAML::Node m_defaults;
  std::vector<std::string> m_default_keys;
};

}  // namespace

std::string Location::str() const {
  if (line <= 0) return file;
  return fmt::format("{}:{}:{}", file, line, column);
}

std::vector<std::string> TargetDecl::references() const {
  std::vector<std::string> names;
  for (const auto& r : refs)
    if (std::find(names.begin(), names.end(), r.name) == names.end()) names.push_back(r.name);
  return names;
}

const TargetDecl* Recipe::find_target(std::string_view name) const {
  for (const auto& t : targets)
    if (t.name == name) return &t;
  return nullptr;
}

const SourceDecl* Recipe::find_source(std::string_view name) const {
  auto it = sources.find(std::string(name));
  return it == sources.end() ? nullptr : &it->second;
}

Result<Recipe> parse_recipe_text(const FileSystem& fs, std::string_view text, const fs::path& file,
                                 const Registry& registry) {
  return Parser(fs, file, registry).parse(text);
}

Result<Recipe> parse_recipe(const FileSystem& fs, const fs::path& file, const Registry& registry) {
  auto text = fs.read_file(file);
  if (!text.ok()) {
    if (text.error().code == Errc::kNotFound)
      return make_error(Errc::kInvalidInput, file.string(), "no recipe here (use -f FILE or -C DIR)");
    return text.error();
  }
  return parse_recipe_text(fs, *text, file, registry);
}

}  // namespace mb
