// `modelbuild status`: each target as up to date, stale or failed.
#include <cstdio>

#include "cli/commands.h"
#include "cli/printing.h"

namespace mb::cli {

int status_command(const std::vector<std::string>& args) {
  CLI::App app("List each target as up to date, stale or failed, without building anything.", "status");
  GlobalOptions g;
  add_global_options(app, g);
  std::vector<std::string> targets;
  app.add_option("targets", targets, "targets (default: all)");
  if (int rc = parse_args(app, args); rc >= 0) return rc;
  auto s = open_session(g);
  if (!s.ok()) return report_error(s.error());
  auto e = evaluate_targets(*s, targets);
  if (!e.ok()) return report_error(e.error());
  nlohmann::json out = nlohmann::json::array();
  for (const auto& t : e->report.targets) {
    std::string state = target_state_name(t.state);
    if (t.state == TargetState::kBuilt) state = "up to date";
    std::string detail;
    if (t.state == TargetState::kFailed && !t.failures.empty()) detail = t.failures.front();
    if (g.json)
      out.push_back({{"target", t.name}, {"state", state}, {"detail", detail}});
    else
      std::printf("%-20s %-11s %s\n", t.name.c_str(), state.c_str(), detail.c_str());
  }
  if (g.json) std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace mb::cli
