// `modelbuild --check TARGET` (the comparison itself is release/check.h) and
// the git-source resolver every recipe command installs on its Builder.
#include "release/check.h"

#include <unistd.h>

#include <cstdio>

#include "cli/commands.h"
#include "cli/printing.h"
#include "release/git_source.h"

namespace mb::cli {

void install_git_resolver(Session& s, Builder& builder) {
  // Lazily, for gc, which must work even when a pin no longer resolves: a
  // bad pin shows as that source's failure. build, status, explain, --check
  // and release resolve every pin up front instead (install_git_sources), so
  // a bad pin exits 2 before anything runs.
  builder.git_resolver = [&files = *s.fs,
                          cache = builder.options().cache_dir](const SourceDecl& src) -> Result<fs::path> {
    MB_ASSIGN(ResolvedGit r, resolve_git_source(files, src, cache));
    return r.path;
  };
}

int check_determinism(Session& s, const Plan& plan) {
  fs::path scratch = fs::temp_directory_path() / fmt::format("modelbuild-check-{}", ::getpid());
  auto result = check_reproducible(*s.fs, *s.reporter, s.rules, s.recipe, plan, s.build, scratch);
  (void)s.fs->remove_all(scratch);
  if (!result.ok()) return report_error(*s.reporter, result.error());
  if (!result->reference_ok) {
    print_build_summary(s, plan, result->reference, GlobalOptions{});
    return result->reference.exit_code();
  }
  for (const auto& d : result->differences) s.reporter->error(d);
  if (!result->differences.empty()) {
    s.reporter->error(fmt::format("--check: {} of {} steps did not reproduce byte for byte", result->differences.size(),
                                  result->steps_compared));
    return 1;
  }
  s.reporter->info(fmt::format("--check: all {} steps reproduced byte for byte", result->steps_compared));
  return 0;
}

}  // namespace mb::cli
