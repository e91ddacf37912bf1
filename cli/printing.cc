#include "cli/printing.h"

#include <fmt/ranges.h>

#include <cstdio>

#include "release/target_record.h"
#include "rules/gate.h"

namespace mb::cli {

std::string human_size(uint64_t bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.2f} {}", v, units[u]);
}

std::string relative_to_cwd(const fs::path& p) {
  std::error_code ec;
  fs::path rel = fs::relative(p, fs::current_path(), ec);
  if (ec || rel.empty() || rel.string().rfind("../../", 0) == 0) return p.string();
  return rel.string();
}

std::string format_gate_cases(const nlohmann::json& gate, bool failures_only) {
  std::string out;
  if (!gate.contains("cases")) return out;
  for (const auto& c : gate["cases"]) {
    bool passed = c.value("passed", false);
    if (failures_only && passed) continue;
    std::string first = c.value("first_line", std::string());
    if (first.size() > 70) first = first.substr(0, 67) + "...";
    out += fmt::format("    {} {:<48} expected {:<6} got {:<6} | {}\n", passed ? "ok  " : "FAIL",
                       "\"" + c.value("prompt", std::string()) + "\"", c.value("expected", std::string()),
                       c.value("got", std::string()), first);
  }
  return out;
}

// One line per candidate a search tried: its verdict and why, or the values
// its checks read.
std::string candidate_lines(const Plan& plan, const BuildReport& report, const TargetResult& t) {
  std::string out;
  const TargetPlan& tp = plan.targets.at(t.name);
  for (size_t k = 0; k < t.candidates.size(); ++k) {
    const CandidateResult& c = t.candidates[k];
    if (c.verdict == "untried") continue;
    out += fmt::format("\n  candidate {}: {}", c.name, c.verdict);
    if (!c.reasons.empty()) {
      out += ": " + c.reasons.front();
      continue;
    }
    std::vector<std::string> values;
    for (const Check& check : tp.candidates[k].checks) {
      const auto& r = report.steps[static_cast<size_t>(check.step)].report;
      const nlohmann::json::json_pointer ptr(check.pointer);
      if (r.contains(ptr) && r[ptr].is_number())
        values.push_back(check.percent ? fmt::format("{} {:.0f}%", check.what, 100 * r[ptr].get<double>())
                                       : fmt::format("{} {:.3g}", check.what, r[ptr].get<double>()));
    }
    if (!values.empty()) out += fmt::format(" ({})", fmt::join(values, ", "));
  }
  return out;
}

namespace {}  // namespace

void print_build_summary(Session& s, const Plan& plan, const BuildReport& report, const GlobalOptions& g) {
  if (g.json) {
    for (const auto& t : report.targets) {
      nlohmann::json fields = {{"target", t.name},
                               {"state", target_state_name(t.state)},
                               {"path", t.path.string()},
                               {"failures", t.failures}};
      s.reporter->report({EventKind::kMessage, Level::kInfo, t.name, "target", fields});
    }
    return;
  }
  for (const auto& t : report.targets) {
    std::string line;
    switch (t.state) {
      case TargetState::kUpToDate:
      case TargetState::kBuilt: {
        line = fmt::format("{}: {}", t.name, target_state_name(t.state));
        if (!t.path.empty()) line += " -> " + relative_to_cwd(t.path);
        if (!t.link_kind.empty()) line += fmt::format(" ({})", t.link_kind);
        const int gate_step = gate_step_of(plan, report, t.name);
        if (t.winner >= 0) line += fmt::format(", chose {}", t.candidates[static_cast<size_t>(t.winner)].name);
        line += candidate_lines(plan, report, t);
        if (gate_step >= 0) {
          const auto& gr = report.steps[gate_step].report;
          line += fmt::format(", gate passed: accuracy {:.0f}%", 100.0 * gr.value("accuracy", 0.0));
        }
        s.reporter->info(line);
        break;
      }
      case TargetState::kStale:
        s.reporter->info(fmt::format("{}: would be built", t.name));
        break;
      case TargetState::kFailed: {
        std::string msg = fmt::format("{}: FAILED", t.name);
        for (const auto& f : t.failures) msg += "\n  - " + f;
        msg += candidate_lines(plan, report, t);
        const int gate_step = gate_step_of(plan, report, t.name);
        if (gate_step >= 0) {
          const StepResult& gr = report.steps[gate_step];
          if (gr.state == StepState::kBuilt || gr.state == StepState::kCached) {
            std::string cases = format_gate_cases(gr.report, false);
            if (!cases.empty()) msg += "\n  gate cases:\n" + cases;
          }
        }
        s.reporter->error(msg);
        break;
      }
    }
  }
}

}  // namespace mb::cli
