// Parsing and validating modelbuild.yaml. See docs/recipes.md for the format.
#include "graph/recipe.h"

#include <algorithm>
#include <functional>
#include <set>

#include "base/yaml_reader.h"

namespace mb {
namespace {

const std::vector<std::string> kTopKeys = {"version", "sources", "defaults", "targets"};
const std::vector<std::string> kSourceKeys = {"path", "git"};
const std::vector<std::string> kGitKeys = {"repo", "rev", "path"};
const std::vector<std::string> kModelKeys = {
    "base", "adapters", "fusion", "bits", "group_size", "dtype", "quantizer", "gate", "min_delta_retention"};
const std::vector<std::string> kDefaultKeys = {"fusion",    "bits", "group_size",         "dtype",
                                               "quantizer", "gate", "min_delta_retention"};
const std::vector<std::string> kCommandKeys = {"command", "inputs", "outputs"};
const std::vector<std::string> kGateKeys = {"suite", "min_accuracy", "min_delta_retention", "runner"};
const std::vector<int> kBits = {2, 3, 4, 5, 6, 8};

bool valid_name(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  return name != "." && name != "..";
}

class Parser {
 public:
  Parser(const FileSystem& fs, const fs::path& file) : m_fs(fs), m_y(file.string()) {
    m_recipe.file = fs::absolute(file).lexically_normal();
    m_recipe.dir = m_recipe.file.parent_path();
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
      MB_TRY(m_y.check_keys(root["defaults"], "defaults", kDefaultKeys));
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
      YAML::Node path_node = v;
      if (v.IsMap()) {
        MB_TRY(m_y.check_keys(v, fmt::format("source '{}'", src.name), kSourceKeys));
        if (v["git"] && v["path"])
          return m_y.error(v, fmt::format("source '{}': give either 'path' or 'git', not both", src.name));
        if (v["git"]) {
          MB_TRY(parse_git(v["git"], src));
          m_recipe.sources[src.name] = std::move(src);
          continue;
        }
        if (!v["path"]) return m_y.error(v, fmt::format("source '{}' needs 'path' or 'git'", src.name));
        path_node = v["path"];
      }
      MB_ASSIGN(std::string rel, m_y.string(path_node, "path"));
      if (rel.empty()) return m_y.error(path_node, fmt::format("source '{}': empty path", src.name));
      src.path = (m_recipe.dir / rel).lexically_normal();
      if (!m_fs.stat(src.path).ok())
        return m_y.error(path_node, fmt::format("source '{}': {} does not exist", src.name, src.path.string()));
      m_recipe.sources[src.name] = std::move(src);
    }
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
      if (v["command"]) {
        MB_ASSIGN(t.body, parse_command(v, t.name));
      } else if (v["base"]) {
        MB_ASSIGN(t.body, parse_model(v, t.name));
      } else {
        // Most likely a misspelled key: say which one before anything else.
        std::vector<std::string> any = kModelKeys;
        any.insert(any.end(), kCommandKeys.begin(), kCommandKeys.end());
        MB_TRY(m_y.check_keys(v, fmt::format("target '{}'", t.name), any));
        return m_y.error(
            it->first,
            fmt::format("target '{}' needs 'base' (a model target) or 'command' (a command target)", t.name));
      }
      m_target_nodes[t.name] = v;
      m_recipe.targets.push_back(std::move(t));
    }
    return {};
  }

  // Looks a key up in the target first, then in `defaults:`.
  YAML::Node lookup(const YAML::Node& target, const char* key) const {
    if (target[key]) return target[key];
    if (m_defaults.IsMap() && m_defaults[key]) return m_defaults[key];
    return YAML::Node(YAML::NodeType::Undefined);  // a default Node() is null, which tests true
  }

  Result<ModelTarget> parse_model(const YAML::Node& v, const std::string& name) {
    MB_TRY(m_y.check_keys(v, fmt::format("model target '{}'", name), kModelKeys));
    ModelTarget m;
    MB_ASSIGN(m.base, m_y.string(v["base"], "base"));
    m_ref_nodes[name + "\n" + m.base] = v["base"];
    if (v["adapters"]) {
      MB_ASSIGN(m.adapters, m_y.string_list(v["adapters"], "adapters"));
      for (const auto& a : m.adapters) m_ref_nodes[name + "\n" + a] = v["adapters"];
    }
    m.fusion = m.adapters.empty() ? Fusion::kNone : Fusion::kDequantize;
    if (YAML::Node f = lookup(v, "fusion")) {
      MB_ASSIGN(std::string s, m_y.string(f, "fusion"));
      if (s == "dequantize")
        m.fusion = Fusion::kDequantize;
      else if (s == "inplace")
        m.fusion = Fusion::kInplace;
      else if (s == "none")
        m.fusion = Fusion::kNone;
      else
        return m_y.error(f, fmt::format("fusion must be dequantize, inplace or none, got '{}'{}", s,
                                        hint(s, {"dequantize", "inplace", "none"})));
    }
    if (YAML::Node b = lookup(v, "bits"); b && !b.IsNull() && !(b.IsScalar() && b.Scalar() == "none")) {
      MB_ASSIGN(int64_t bits, m_y.integer(b, "bits"));
      if (std::find(kBits.begin(), kBits.end(), bits) == kBits.end())
        return m_y.error(b, fmt::format("bits must be 2, 3, 4, 5, 6, 8 or none, got {}", bits));
      m.bits = static_cast<int>(bits);
    }
    if (YAML::Node g = lookup(v, "group_size")) {
      MB_ASSIGN(int64_t gs, m_y.integer(g, "group_size"));
      if (gs != 32 && gs != 64 && gs != 128)
        return m_y.error(g, fmt::format("group_size must be 32, 64 or 128, got {}", gs));
      m.group_size = static_cast<int>(gs);
    }
    if (YAML::Node d = lookup(v, "dtype")) {
      MB_ASSIGN(std::string s, m_y.string(d, "dtype"));
      if (s == "f16" || s == "fp16") s = "float16";
      if (s == "bf16") s = "bfloat16";
      if (s == "f32" || s == "fp32") s = "float32";
      if (s != "float16" && s != "bfloat16" && s != "float32")
        return m_y.error(d, fmt::format("dtype must be float16, bfloat16 or float32, got '{}'", s));
      m.dtype = s;
    }
    if (YAML::Node q = lookup(v, "quantizer")) {
      MB_ASSIGN(m.quantizer, m_y.string(q, "quantizer"));
      if (m.quantizer != "gpu" && m.quantizer != "cpu")
        return m_y.error(q, fmt::format("quantizer must be gpu or cpu, got '{}'", m.quantizer));
    }
    if (YAML::Node r = lookup(v, "min_delta_retention")) {
      MB_ASSIGN(double x, fraction(r, "min_delta_retention"));
      m.min_delta_retention = x;
    }
    if (YAML::Node g = lookup(v, "gate"); g && !g.IsNull()) {
      MB_ASSIGN(GateDecl gate, parse_gate(g, name));
      m_ref_nodes[name + "\n" + gate.suite] = g["suite"];
      m.gate = std::move(gate);
    }
    // Combinations that cannot mean what the user wants.
    if (m.fusion == Fusion::kInplace && m.adapters.empty())
      return m_y.error(v, fmt::format("target '{}': fusion: inplace needs adapters", name));
    if (m.fusion == Fusion::kInplace && v["bits"])
      return m_y.error(v["bits"], fmt::format("target '{}': fusion: inplace keeps the base's own bits and group "
                                              "size; remove 'bits' or use fusion: dequantize",
                                              name));
    if (m.fusion == Fusion::kNone && !m.adapters.empty() && m.bits)
      return m_y.error(v["bits"] ? v["bits"] : v, fmt::format("target '{}': fusion: none applies the adapters at run "
                                                              "time, so there is nothing to quantize; use fusion: "
                                                              "dequantize",
                                                              name));
    return m;
  }

  Result<GateDecl> parse_gate(const YAML::Node& g, const std::string& name) {
    MB_TRY(m_y.check_keys(g, fmt::format("gate of '{}'", name), kGateKeys));
    GateDecl gate;
    gate.loc = location(g);
    if (!g["suite"]) return m_y.error(g, fmt::format("gate of '{}' needs 'suite'", name));
    MB_ASSIGN(gate.suite, m_y.string(g["suite"], "suite"));
    if (g["min_accuracy"]) {
      MB_ASSIGN(gate.min_accuracy, fraction(g["min_accuracy"], "min_accuracy"));
    }
    if (g["min_delta_retention"]) {
      MB_ASSIGN(double x, fraction(g["min_delta_retention"], "min_delta_retention"));
      gate.min_delta_retention = x;
    }
    if (g["runner"]) {
      MB_TRY(m_y.expect_map(g["runner"], "runner"));
      MB_ASSIGN(auto runner, m_y.to_json(g["runner"]));
      if (!runner.contains("type") || !runner["type"].is_string())
        return m_y.error(g["runner"], "runner needs 'type' (native, command or openai)");
      std::string type = runner["type"];
      if (type != "native" && type != "command" && type != "openai")
        return m_y.error(g["runner"]["type"], fmt::format("runner type must be native, command or openai, got '{}'{}",
                                                          type, hint(type, {"native", "command", "openai"})));
      gate.runner = nlohmann::json::parse(runner.dump());
    }
    return gate;
  }

  Result<CommandTarget> parse_command(const YAML::Node& v, const std::string& name) {
    MB_TRY(m_y.check_keys(v, fmt::format("command target '{}'", name), kCommandKeys));
    CommandTarget c;
    const YAML::Node& cmd = v["command"];
    if (cmd.IsScalar()) {
      c.shell = cmd.Scalar();
      if (c.shell.empty()) return m_y.error(cmd, "'command' is empty");
    } else {
      MB_ASSIGN(c.argv, m_y.string_list(cmd, "command"));
      if (c.argv.empty()) return m_y.error(cmd, "'command' is empty");
    }
    if (v["inputs"]) {
      const YAML::Node& in = v["inputs"];
      if (in.IsSequence()) {
        MB_ASSIGN(auto names, m_y.string_list(in, "inputs"));
        for (const auto& n : names) {
          if (!c.inputs.emplace(n, n).second) return m_y.error(in, fmt::format("input '{}' listed twice", n));
          m_ref_nodes[name + "\n" + n] = in;
        }
      } else {
        MB_TRY(m_y.check_keys(in, "inputs", collect_keys(in)));
        for (auto it = in.begin(); it != in.end(); ++it) {
          MB_ASSIGN(std::string ref, m_y.string(it->second, it->first.Scalar()));
          c.inputs[it->first.Scalar()] = ref;
          m_ref_nodes[name + "\n" + ref] = it->second;
        }
      }
    }
    if (!v["outputs"]) return m_y.error(v, fmt::format("command target '{}' needs 'outputs'", name));
    MB_ASSIGN(c.outputs, m_y.string_list(v["outputs"], "outputs"));
    for (const auto& out : c.outputs) {
      fs::path p(out);
      if (out.empty() || p.is_absolute() || p.lexically_normal().string().rfind("..", 0) == 0)
        return m_y.error(v["outputs"], fmt::format("output '{}' must be a relative path inside {{out}}", out));
    }
    return c;
  }

  Result<double> fraction(const YAML::Node& node, const std::string& key) {
    MB_ASSIGN(double x, m_y.number(node, key));
    if (!(x >= 0.0 && x <= 1.0)) return m_y.error(node, fmt::format("'{}' must be between 0 and 1, got {}", key, x));
    return x;
  }

  Status check_references() {
    std::vector<std::string> names;
    for (const auto& [n, s] : m_recipe.sources) names.push_back(n);
    for (const auto& t : m_recipe.targets) names.push_back(t.name);
    for (const auto& t : m_recipe.targets) {
      for (const auto& ref : t.references()) {
        if (m_recipe.find_source(ref) || m_recipe.find_target(ref)) continue;
        auto node_it = m_ref_nodes.find(t.name + "\n" + ref);
        std::string msg = fmt::format("target '{}' refers to '{}', which is neither a source nor a target{}", t.name,
                                      ref, hint(ref, names));
        if (node_it != m_ref_nodes.end()) return m_y.error(node_it->second, msg);
        return Error{Errc::kInvalidInput, t.loc.str(), msg};
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

  static std::vector<std::string> collect_keys(const YAML::Node& map) {
    std::vector<std::string> keys;
    if (map.IsMap())
      for (auto it = map.begin(); it != map.end(); ++it)
        if (it->first.IsScalar()) keys.push_back(it->first.Scalar());
    return keys;
  }

  static std::string hint(const std::string& word, const std::vector<std::string>& candidates) {
    std::string h = did_you_mean(word, candidates);
    return h.empty() ? "" : fmt::format(" (did you mean '{}'?)", h);
  }

  Location location(const YAML::Node& node) const {
    return Location{m_y.file(), node.Mark().line + 1, node.Mark().column + 1};
  }

  const FileSystem& m_fs;
  YamlReader m_y;
  Recipe m_recipe;
  YAML::Node m_defaults;
  std::map<std::string, YAML::Node> m_target_nodes;
  std::map<std::string, YAML::Node> m_ref_nodes;  // "target\nref" -> node, for error positions
};

}  // namespace

std::string Location::str() const {
  if (line <= 0) return file;
  return fmt::format("{}:{}:{}", file, line, column);
}

const char* fusion_name(Fusion f) {
  switch (f) {
    case Fusion::kDequantize:
      return "dequantize";
    case Fusion::kInplace:
      return "inplace";
    case Fusion::kNone:
      return "none";
  }
  return "?";
}

std::vector<std::string> TargetDecl::references() const {
  std::vector<std::string> refs;
  if (is_model()) {
    const ModelTarget& m = model();
    refs.push_back(m.base);
    refs.insert(refs.end(), m.adapters.begin(), m.adapters.end());
    if (m.gate) refs.push_back(m.gate->suite);
  } else {
    for (const auto& [role, ref] : command().inputs) refs.push_back(ref);
  }
  return refs;
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

Result<Recipe> parse_recipe_text(const FileSystem& fs, std::string_view text, const fs::path& file) {
  return Parser(fs, file).parse(text);
}

Result<Recipe> parse_recipe(const FileSystem& fs, const fs::path& file) {
  auto text = fs.read_file(file);
  if (!text.ok()) {
    if (text.error().code == Errc::kNotFound)
      return make_error(Errc::kInvalidInput, file.string(), "no recipe here (use -f FILE or -C DIR)");
    return text.error();
  }
  return parse_recipe_text(fs, *text, file);
}

}  // namespace mb
