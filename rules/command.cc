#include "rules/command.h"

#include <set>

#include "base/subprocess.h"

namespace mb {

Result<std::string> expand_placeholders(std::string_view text, const StepContext& ctx) {
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
    if (close == std::string_view::npos)
      return make_error(Errc::kInvalidInput, ctx.step_label, "unclosed '{{' in command");
    std::string name(text.substr(i + 1, close - i - 1));
    if (name.rfind("in.", 0) == 0) name = name.substr(3);
    if (name == "out") {
      out += ctx.output_dir.string();
    } else if (const StepInput* in = ctx.input(name)) {
      out += in->path.string();
    } else {
      return make_error(Errc::kInvalidInput, ctx.step_label, "unknown placeholder {{{}}} in command", name);
    }
    i = close;
  }
  return out;
}

Status CommandRule::run(StepContext& ctx) const {
  std::vector<std::string> argv;
  if (ctx.params.contains("argv")) {
    for (const auto& word : ctx.params["argv"]) {
      MB_ASSIGN(std::string w, expand_placeholders(word.get<std::string>(), ctx));
      argv.push_back(std::move(w));
    }
  } else {
    MB_ASSIGN(std::string line, expand_placeholders(ctx.params.at("shell").get<std::string>(), ctx));
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
  for (const auto& o : ctx.params.at("outputs")) {
    fs::path rel = fs::path(o.get<std::string>()).lexically_normal();
    declared.insert(rel);
    if (!ctx.fs.stat(ctx.output_dir / rel).ok())
      return make_error(Errc::kStepFailed, ctx.step_label, "the command did not create its declared output '{}'",
                        rel.string());
  }
  std::error_code ec;
  std::vector<fs::path> extra;
  for (auto it = fs::recursive_directory_iterator(ctx.output_dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    fs::path rel = fs::relative(it->path(), ctx.output_dir);
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
  ctx.report["exit_code"] = res.exit_code;
  return {};
}

}  // namespace mb
