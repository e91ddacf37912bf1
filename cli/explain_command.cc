// `modelbuild explain TARGET`: for each stale step, why it would rerun.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/printing.h"

namespace mb::cli {

namespace {

// --json: one document on stdout, {"stale": [{step, kind, why}], "searches":
// [{target, candidates: [{candidate, verdict, reasons}]}]}.
int print_json(const Evaluation& e) {
  nlohmann::json stale = nlohmann::json::array();
  for (const auto& step : e.plan.steps) {
    const StepResult& r = e.report.steps[step.index];
    if (r.state == StepState::kStale) stale.push_back({{"step", step.label}, {"kind", step.kind}, {"why", r.why}});
  }
  nlohmann::json searches = nlohmann::json::array();
  for (const auto& t : e.report.targets) {
    if (t.candidates.empty()) continue;
    nlohmann::json cands = nlohmann::json::array();
    for (const auto& c : t.candidates)
      cands.push_back({{"candidate", c.name}, {"verdict", c.verdict}, {"reasons", c.reasons}});
    searches.push_back({{"target", t.name}, {"candidates", std::move(cands)}});
  }
  const std::string text = nlohmann::json{{"stale", std::move(stale)}, {"searches", std::move(searches)}}.dump(2);
  std::printf("%s\n", text.c_str());
  return 0;
}

}  // namespace

int explain_command(const std::vector<std::string>& args) {
  CLI::App app("Say, for each stale step of the targets, why it would rerun.", "explain");
  GlobalOptions g;
  add_global_options(app, g);
  std::vector<std::string> targets;
  app.add_option("targets", targets, "targets (default: all)");
  if (int rc = parse_args(app, args); rc >= 0) return rc;
  auto s = open_session(g);
  if (!s.ok()) return report_error(s.error());
  auto e = evaluate_targets(*s, targets);
  if (!e.ok()) return report_error(e.error());
  if (g.json) return print_json(*e);
  bool any = false;
  for (const auto& step : e->plan.steps) {
    const StepResult& r = e->report.steps[step.index];
    if (r.state != StepState::kStale) continue;
    any = true;
    std::printf("%s: stale\n", step.label.c_str());
    for (const auto& why : r.why) std::printf("  - %s\n", why.c_str());
  }
  // A search's untried candidates are stale by design: say where it stands.
  for (const auto& t : e->report.targets) {
    if (t.candidates.empty()) continue;
    any = true;
    std::string lines = candidate_lines(e->plan, e->report, t);
    std::printf(
        "%s: searches %zu candidates, smallest first; the larger ones run only if every smaller one "
        "fails%s\n",
        t.name.c_str(), t.candidates.size(), lines.empty() ? " (none has run yet)" : ":");
    if (!lines.empty()) std::printf("%s\n", lines.substr(1).c_str());
  }
  if (!any) std::printf("everything is up to date\n");
  return 0;
}

}  // namespace mb::cli
