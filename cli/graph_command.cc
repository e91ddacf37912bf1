// `modelbuild graph [TARGET...] [--dot]`: the step graph, as text or Graphviz.
#include <cstdio>

#include "cli/commands.h"
#include "graph/plan.h"

namespace mb::cli {

int graph_command(const std::vector<std::string>& args) {
  CLI::App app("Print the step graph the targets expand into.", "graph");
  GlobalOptions g;
  add_global_options(app, g);
  std::vector<std::string> targets;
  bool dot = false;
  app.add_option("targets", targets, "targets (default: all)");
  app.add_flag("--dot", dot, "print Graphviz dot");
  if (int rc = parse_args(app, args); rc >= 0) return rc;
  auto s = open_session(g);
  if (!s.ok()) return report_error(s.error());
  auto plan = make_plan(s->recipe, s->rules, targets);
  if (!plan.ok()) return report_error(plan.error());
  std::string text = dot ? plan_to_dot(*plan) : plan_to_text(*plan);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

}  // namespace mb::cli
