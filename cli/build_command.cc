// `modelbuild [build] [TARGET...]`: build targets, reusing what is cached.
#include <cstdio>

#include "cli/commands.h"
#include "cli/printing.h"
#include "cli/remote_options.h"
#include "graph/plan.h"
#include "release/git_source.h"
#include "release/lock_file.h"

namespace mb::cli {

int build_command(const std::vector<std::string>& args) {
  CLI::App app("Build targets: every step is keyed by the content of its inputs; only stale steps run.", "build");
  GlobalOptions g;
  add_global_options(app, g);
  std::vector<std::string> targets;
  bool keep_going = false, dry_run = false, regate = false, check = false;
  app.add_option("targets", targets, "targets to build (default: all)");
  app.add_flag("-k,--keep-going", keep_going, "keep building what does not depend on a failure");
  app.add_flag("-n,--dry-run", dry_run, "show what would run, run nothing");
  app.add_flag("--regate", regate, "re-run gates even when a verdict is cached");
  app.add_flag("--check", check, "rebuild without the cache and compare the bytes");
  RemoteFlags remote_flags;
  add_remote_options(app, remote_flags);
  if (int rc = parse_args(app, args); rc >= 0) return rc;

  auto session = open_session(g);
  if (!session.ok()) return report_error(session.error());
  Session& s = *session;
  s.build.keep_going = keep_going;
  s.build.dry_run = dry_run;
  s.build.regate = regate;
  auto plan = make_plan(s.recipe, s.rules, targets);
  if (!plan.ok()) return report_error(*s.reporter, plan.error());
  if (check) return check_determinism(s, *plan);
  // The lock file is rewritten after the build: a corrupt one must stop the
  // build before anything runs, not after.
  if (!dry_run)
    if (auto lock = read_lock_file(*s.fs, lock_file_path(s.recipe.dir)); !lock.ok())
      return report_error(*s.reporter, lock.error());

  auto remote = make_remote_cache(remote_flags, *s.reporter);
  if (!remote.ok()) return report_error(*s.reporter, remote.error());
  if (!dry_run) s.build.fallback = remote->get();
  Builder builder(*s.fs, *s.reporter, s.rules, s.build);
  // Every git pin is read before anything runs: a bad one is bad input.
  auto git = install_git_sources(*s.fs, s.recipe, *plan, builder);
  if (!git.ok()) return report_error(*s.reporter, git.error());
  auto report = builder.build(s.recipe, *plan);
  if (!report.ok()) return report_error(*s.reporter, report.error());
  print_build_summary(s, *plan, *report, g);
  if (!dry_run) {
    // modelbuild.lock records what this build resolved, gate verdicts included.
    auto changed = write_lock_after_build(builder, s.recipe, *plan, *report, *git);
    if (!changed.ok()) return report_error(*s.reporter, changed.error());
    if (*changed) s.reporter->info(fmt::format("updated {}", relative_to_cwd(lock_file_path(s.recipe.dir))));
  }
  return report->exit_code();
}

}  // namespace mb::cli
