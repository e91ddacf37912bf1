// `modelbuild --check TARGET`: Nix's --check in spirit. Build normally (the
// cached result is the reference), rebuild every step from scratch into a
// throw-away cache, and compare the output bytes step by step.
#include <unistd.h>

#include <cstdio>

#include "cli/commands.h"
#include "cli/printing.h"

namespace mb::cli {

void install_git_resolver(Session&, Builder&) {}

int check_determinism(Session& s, const Plan& plan) {
  Builder reference(*s.fs, *s.reporter, s.rules, s.build);
  install_git_resolver(s, reference);
  auto first = reference.build(s.recipe, plan);
  if (!first.ok()) return report_error(*s.reporter, first.error());
  if (!first->ok()) {
    print_build_summary(s, plan, *first, GlobalOptions{});
    return first->exit_code();
  }
  fs::path scratch = fs::temp_directory_path() / fmt::format("modelbuild-check-{}", ::getpid());
  BuildOptions fresh_opts = s.build;
  fresh_opts.cache_dir = scratch / "cache";
  fresh_opts.state_dir = scratch / "state";
  fresh_opts.build_dir = scratch / "build";
  fresh_opts.use_cache = false;
  fresh_opts.materialize = false;
  s.reporter->info("--check: rebuilding every step without the cache");
  int rc = 0;
  {
    Builder fresh(*s.fs, *s.reporter, s.rules, fresh_opts);
    install_git_resolver(s, fresh);
    auto second = fresh.build(s.recipe, plan);
    if (!second.ok()) {
      rc = report_error(*s.reporter, second.error());
    } else {
      for (const auto& step : plan.steps) {
        const StepResult& a = first->steps[step.index];
        const StepResult& b = second->steps[step.index];
        if (b.state != StepState::kBuilt) continue;
        if (a.output_digest == b.output_digest) continue;
        rc = 1;
        std::string msg = fmt::format("{}: not reproducible", step.label);
        std::map<std::string, Digest> before(a.outputs.begin(), a.outputs.end());
        for (const auto& [path, d] : b.outputs) {
          auto it = before.find(path);
          if (it == before.end()) msg += fmt::format("\n  - {} appeared", path);
          else if (it->second != d)
            msg += fmt::format("\n  - {} differs: {} → {}", path, it->second.short_hex(), d.short_hex());
          before.erase(path);
        }
        for (const auto& [path, d] : before) msg += fmt::format("\n  - {} disappeared", path);
        s.reporter->error(msg);
      }
      if (rc == 0) s.reporter->info(fmt::format("--check: all {} steps reproduced byte for byte", plan.steps.size()));
    }
  }
  (void)s.fs->remove_all(scratch);
  return rc;
}

}  // namespace mb::cli
