// `modelbuild gc [--max-size SIZE]`: trim the cache, least recently used
// first, never touching what the recipe's targets currently point at.
#include <cstdio>

#include "cache/cache.h"
#include "cli/commands.h"
#include "cli/printing.h"
#include "graph/plan.h"

namespace mb::cli {
namespace {

Result<uint64_t> parse_size(const std::string& text) {
  if (text.empty()) return make_error(Errc::kInvalidInput, "--max-size", "empty size");
  size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(text, &pos);
  } catch (...) {
    return make_error(Errc::kInvalidInput, "--max-size", "not a size: '{}'", text);
  }
  std::string unit = text.substr(pos);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double mult = 1;
  if (unit == "" || unit == "B")
    mult = 1;
  else if (unit == "K" || unit == "KB")
    mult = 1e3;
  else if (unit == "M" || unit == "MB")
    mult = 1e6;
  else if (unit == "G" || unit == "GB")
    mult = 1e9;
  else if (unit == "T" || unit == "TB")
    mult = 1e12;
  else if (unit == "KIB")
    mult = 1024.0;
  else if (unit == "MIB")
    mult = 1024.0 * 1024;
  else if (unit == "GIB")
    mult = 1024.0 * 1024 * 1024;
  else
    return make_error(Errc::kInvalidInput, "--max-size", "unknown unit in '{}'", text);
  if (v < 0) return make_error(Errc::kInvalidInput, "--max-size", "negative size");
  return static_cast<uint64_t>(v * mult);
}

}  // namespace

int gc_command(const std::vector<std::string>& args) {
  CLI::App app("Trim the cache, least recently used first; the recipe's current results are kept.", "gc");
  GlobalOptions g;
  add_global_options(app, g);
  std::string max_size = "0";
  app.add_option("--max-size", max_size, "keep at most this much (e.g. 20G); default 0 = drop all unpinned");
  if (int rc = parse_args(app, args); rc >= 0) return rc;
  auto limit = parse_size(max_size);
  if (!limit.ok()) return report_error(limit.error());
  auto s = open_session(g);
  if (!s.ok()) return report_error(s.error());
  // Pin every step key the current recipe resolves to.
  auto plan = make_plan(s->recipe, s->rules, {});
  if (!plan.ok()) return report_error(*s->reporter, plan.error());
  NullReporter quiet;
  Builder builder(*s->fs, quiet, s->rules, s->build);
  install_git_resolver(*s, builder);  // git-pinned sources, read from the object database
  auto report = builder.evaluate(s->recipe, *plan);
  if (!report.ok()) return report_error(*s->reporter, report.error());
  std::vector<Digest> pinned;
  for (const auto& r : report->steps)
    if (r.key_known) pinned.push_back(r.key);
  auto stats = builder.cache().gc(*limit, pinned);
  if (!stats.ok()) return report_error(*s->reporter, stats.error());
  s->reporter->info(fmt::format("removed {} entries and {} blobs ({}); kept {} ({} pinned entries)",
                                stats->entries_removed, stats->blobs_removed, human_size(stats->bytes_removed),
                                human_size(stats->bytes_kept), pinned.size()));
  return 0;
}

}  // namespace mb::cli
