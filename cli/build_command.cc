// `modelbuild [build] [TARGET...]`: build targets, reusing what is cached.
#include <cstdio>

#include "base/interrupt.h"
#include "cli/commands.h"
#include "cli/printing.h"
#include "cli/remote_options.h"
#include "graph/plan.h"
#include "release/git_source.h"
#include "release/lock_file.h"

namespace mb::cli {
namespace {

// Which steps the interrupt stopped, and how many never started.
void print_interrupted(Session& s, const Plan& plan, const BuildReport& report) {
  std::string stopped;
  int unstarted = 0;
  for (size_t i = 0; i < report.steps.size(); ++i) {
    const StepResult& r = report.steps[i];
    if (r.state == StepState::kFailed && r.error_code == Errc::kCancelled)
      stopped += (stopped.empty() ? "" : ", ") + plan.steps[i].label;
    unstarted += r.state == StepState::kSkipped;
  }
  s.reporter->error(fmt::format("interrupted by {}: stopped {}; {} step(s) not started; nothing partial was kept",
                                interrupt::signal_name(report.interrupted_by),
                                stopped.empty() ? "no running step" : stopped, unstarted));
}

}  // namespace

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
  // SIGINT, SIGTERM and SIGHUP stop the build cleanly; a second one at once.
  interrupt::install();

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
  if (report->interrupted_by != 0) {
    print_interrupted(s, *plan, *report);
    return report->exit_code();  // modelbuild.lock is left as it was
  }
  if (!dry_run) {
    // modelbuild.lock records what this build resolved, gate verdicts included.
    auto changed = write_lock_after_build(builder, s.recipe, *plan, *report, *git);
    if (!changed.ok()) return report_error(*s.reporter, changed.error());
    if (*changed) s.reporter->info(fmt::format("updated {}", relative_to_cwd(lock_file_path(s.recipe.dir))));
  }
  return report->exit_code();
}

}  // namespace mb::cli
