#include "rules/command.h"

#include <unistd.h>

#include <cstdlib>
#include <set>
#include <sstream>

#include "base/subprocess.h"
#include "graph/params.h"

namespace mb {
namespace {

struct CommandSpec : TargetSpec {
  CommandParams params;
  std::vector<std::pair<std::string, std::string>> inputs;  // role -> source or target name

  Status expand(TargetExpansion& x) const override {
    std::vector<InputRef> in;
    for (const auto& [role, ref] : inputs) {
      MB_ASSIGN(InputRef r, x.resolve(ref, role));
      in.push_back(std::move(r));
    }
    const int s = x.add_step("command", params.to_json(), in, "command");
    x.plan().artifact = InputRef{"output", "", s};
    return {};
  }
};

Status parse_inputs(TargetReader& r, CommandSpec& c) {
  if (!r.has_own("inputs")) return {};
  const YAML::Node in = r.get("inputs");
  std::map<std::string, std::string> by_role;
  if (in.IsSequence()) {
    MB_ASSIGN(auto names, r.reference_list("inputs"));
    for (const auto& n : names)
      if (!by_role.emplace(n, n).second) return r.error("inputs", fmt::format("input '{}' listed twice", n));
  } else {
    MB_TRY(r.yaml().expect_map(in, "inputs"));
    for (auto it = in.begin(); it != in.end(); ++it) {
      const YAML::Node value = it->second;  // a handle: it->second is a temporary
      MB_ASSIGN(std::string ref, r.reference_at(value, it->first.Scalar()));
      if (!by_role.emplace(it->first.Scalar(), ref).second)
        return r.yaml().error(it->first, fmt::format("input '{}' listed twice", it->first.Scalar()));
    }
  }
  c.inputs.assign(by_role.begin(), by_role.end());
  return {};
}

// Every placeholder names {out} or a declared input: found now, not after the
// steps before this one have run.
Status check_placeholders(const TargetReader& r, const CommandSpec& c) {
  auto known = [&](const std::string& name) -> std::optional<std::string> {
    for (const auto& [role, ref] : c.inputs)
      if (role == name) return std::string("x");
    return std::nullopt;
  };
  std::vector<std::string> words = c.params.argv;
  if (words.empty()) words.push_back(c.params.shell);
  for (const auto& w : words)
    if (auto e = expand_placeholders(w, "x", known); !e.ok()) return r.error("command", e.error().message);
  return {};
}

Status parse_command(TargetReader& r, CommandSpec& c) {
  const YAML::Node cmd = r.get("command");
  if (cmd.IsScalar()) {
    c.params.shell = cmd.Scalar();
    if (c.params.shell.empty()) return r.error("command", "'command' is empty");
  } else {
    MB_ASSIGN(c.params.argv, r.string_list("command"));
    if (c.params.argv.empty()) return r.error("command", "'command' is empty");
  }
  if (!r.has_own("outputs")) return r.error(fmt::format("command target '{}' needs 'outputs'", r.target()));
  MB_ASSIGN(c.params.outputs, r.string_list("outputs"));
  for (const auto& out : c.params.outputs) {
    fs::path p(out);
    if (out.empty() || p.is_absolute() || p.lexically_normal().string().rfind("..", 0) == 0)
      return r.error("outputs", fmt::format("output '{}' must be a relative path inside {{out}}", out));
  }
  if (r.has_own("tool_version")) {
    MB_ASSIGN(std::string v, r.string("tool_version"));
    if (v.empty()) return r.error("tool_version", "'tool_version' is empty");
    c.params.tool_version = v;
  }
  return {};
}

// The first word of a shell command line, when it is a plain word.
std::optional<std::string> shell_program(const std::string& line) {
  std::istringstream in(line);
  std::string word;
  while (in >> word) {
    if (word.find('=') != std::string::npos && word.find('/') == std::string::npos) continue;  // VAR=value
    if (word.find_first_of("{$`'\"\\;|&<>()") != std::string::npos) return std::nullopt;
    return word;
  }
  return std::nullopt;
}

// Removes what the command left in out_dir besides its declared outputs.
void drop_undeclared(StepContext& ctx, const std::set<fs::path>& declared) {
  std::error_code ec;
  std::vector<fs::path> extra;
  for (auto it = fs::recursive_directory_iterator(ctx.output_dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const fs::path rel = it->path().lexically_relative(ctx.output_dir);
    bool keep = false;
    for (const auto& d : declared) {
      auto [a, b] = std::mismatch(d.begin(), d.end(), rel.begin(), rel.end());
      if (a == d.end() || b == rel.end()) keep = true;  // rel is inside d, or d inside rel
    }
    if (!keep) extra.push_back(it->path());
  }
  for (const auto& p : extra) {
    ctx.reporter.debug(fmt::format("[{}] dropping undeclared output {}", ctx.step_label, p.string()));
    (void)ctx.fs.remove_all(p);
  }
}

}  // namespace

nlohmann::json CommandParams::to_json() const {
  nlohmann::json j = {{"outputs", outputs}};
  if (!argv.empty())
    j["argv"] = argv;
  else
    j["shell"] = shell;
  if (tool_version) j["tool_version"] = *tool_version;
  return j;
}

Result<CommandParams> CommandParams::parse(const nlohmann::json& params) {
  CommandParams p;
  ParamReader r(params);
  r.optional("argv", p.argv);
  r.optional("shell", p.shell);
  r.required("outputs", p.outputs);
  r.optional("tool_version", p.tool_version);
  MB_TRY(r.finish());
  if (p.argv.empty() == p.shell.empty())
    return make_error(Errc::kInternal, "", "a command step needs exactly one of argv and shell");
  return p;
}

Result<std::shared_ptr<const TargetSpec>> CommandTargetKind::parse(TargetReader& r) const {
  auto c = std::make_shared<CommandSpec>();
  MB_TRY(parse_command(r, *c));
  MB_TRY(parse_inputs(r, *c));
  MB_TRY(check_placeholders(r, *c));
  return std::shared_ptr<const TargetSpec>(std::move(c));
}

Result<std::string> expand_placeholders(
    std::string_view text, const std::string& out_dir,
    const std::function<std::optional<std::string>(const std::string&)>& input_path) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '{') {
      out += text[i];
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '{') {  // "{{" is a literal brace
      out += '{';
      ++i;
      continue;
    }
    size_t close = text.find('}', i);
    if (close == std::string_view::npos) return make_error(Errc::kInvalidInput, "", "unclosed '{{' in command");
    std::string name(text.substr(i + 1, close - i - 1));
    if (name.rfind("in.", 0) == 0) name = name.substr(3);
    if (name == "out") {
      out += out_dir;
    } else if (auto path = input_path(name)) {
      out += *path;
    } else {
      return make_error(Errc::kInvalidInput, "", "unknown placeholder {{{}}} in command (inputs are named by role)",
                        name);
    }
    i = close;
  }
  return out;
}

std::optional<fs::path> resolve_executable(const std::string& word, const fs::path& work_dir) {
  if (word.empty()) return std::nullopt;
  auto executable = [](const fs::path& p) { return ::access(p.c_str(), X_OK) == 0 && fs::is_regular_file(p); };
  if (word.find('/') != std::string::npos) {
    fs::path p = fs::path(word).is_absolute() ? fs::path(word) : work_dir / word;
    if (!executable(p)) return std::nullopt;
    return fs::weakly_canonical(p);
  }
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    fs::path p = (dir.empty() ? work_dir : fs::path(dir)) / word;
    if (executable(p)) return fs::weakly_canonical(p);
  }
  return std::nullopt;
}

Status CommandRule::check_params(const nlohmann::json& params) const { return CommandParams::parse(params).status(); }

Result<std::vector<fs::path>> CommandRule::tool_inputs(const nlohmann::json& params, const fs::path& work_dir) const {
  MB_ASSIGN(CommandParams p, CommandParams::parse(params));
  if (p.tool_version) return std::vector<fs::path>{};  // the declared version identifies the tool
  const std::optional<std::string> program = p.argv.empty() ? shell_program(p.shell) : p.argv.front();
  if (!program) return std::vector<fs::path>{};
  if (auto exe = resolve_executable(*program, work_dir)) return std::vector<fs::path>{*exe};
  return std::vector<fs::path>{};  // not found: the step will say so when it runs
}

Status CommandRule::run(StepContext& ctx) const {
  MB_ASSIGN(CommandParams p, CommandParams::parse(ctx.params));
  auto input_path = [&](const std::string& name) -> std::optional<std::string> {
    if (const StepInput* in = ctx.input(name)) return in->path.string();
    return std::nullopt;
  };
  auto expand = [&](const std::string& text) -> Result<std::string> {
    auto r = expand_placeholders(text, ctx.output_dir.string(), input_path);
    if (!r.ok()) return make_error(r.error().code, ctx.step_label, "{}", r.error().message);
    return r;
  };
  std::vector<std::string> argv;
  for (const auto& word : p.argv) {
    MB_ASSIGN(std::string w, expand(word));
    argv.push_back(std::move(w));
  }
  if (p.argv.empty()) {
    MB_ASSIGN(std::string line, expand(p.shell));
    argv = {"/bin/sh", "-c", line};
  }
  SubprocessOptions opts;
  opts.cwd = ctx.work_dir;
  opts.env["MODELBUILD_OUT"] = ctx.output_dir.string();
  for (const auto& in : ctx.inputs) opts.env["MODELBUILD_IN_" + in.name] = in.path.string();
  MB_ASSIGN(SubprocessResult res, run_subprocess(argv, opts));
  if (!res.output.empty()) ctx.reporter.debug(fmt::format("[{}] {}", ctx.step_label, tail_lines(res.output, 20)));
  if (res.exit_code != 0) {
    std::string how = res.signal ? fmt::format("was killed by signal {}", res.signal)
                                 : fmt::format("exited with status {}", res.exit_code);
    return make_error(Errc::kStepFailed, ctx.step_label, "command {}\n{}", how, tail_lines(res.output, 10));
  }
  // Keep exactly the declared outputs.
  std::set<fs::path> declared;
  for (const auto& o : p.outputs) {
    fs::path rel = fs::path(o).lexically_normal();
    declared.insert(rel);
    if (!ctx.fs.stat(ctx.output_dir / rel).ok())
      return make_error(Errc::kStepFailed, ctx.step_label, "the command did not create its declared output '{}'",
                        rel.string());
  }
  drop_undeclared(ctx, declared);
  ctx.report["exit_code"] = res.exit_code;
  return {};
}

}  // namespace mb
