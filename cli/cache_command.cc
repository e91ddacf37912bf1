// `modelbuild cache verify`: re-hash every blob; corrupt ones are removed.
#include <cstdio>

#include "base/parallel.h"
#include "cache/cache.h"
#include "cli/commands.h"

namespace mb::cli {

int cache_command(const std::vector<std::string>& args) {
  CLI::App app("Cache maintenance.", "cache");
  GlobalOptions g;
  add_global_options(app, g);
  std::string action;
  app.add_option("action", action, "verify")->required()->check(CLI::IsMember({"verify"}));
  if (int rc = parse_args(app, args); rc >= 0) return rc;
  auto s = open_session(g);
  if (!s.ok()) return report_error(s.error());
  Cache cache(*s->fs, s->build.cache_dir, *s->reporter);
  if (auto st = cache.init(); !st.ok()) return report_error(*s->reporter, st.error());
  int threads = g.jobs > 0 ? g.jobs : core_count();
  auto stats = cache.verify_all(threads);
  if (!stats.ok()) return report_error(*s->reporter, stats.error());
  s->reporter->info(fmt::format("verified {} blobs ({} bytes): {} corrupt, removed", stats->blobs_checked,
                                stats->bytes_checked, stats->corrupt_removed));
  return stats->corrupt_removed == 0 ? 0 : 1;
}

}  // namespace mb::cli
