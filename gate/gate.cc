#include "gate/gate.h"

namespace mb::gate {

std::string CaseVerdict::first_line() const {
  size_t start = response.find_first_not_of(" \n\r\t");
  if (start == std::string::npos) return "";
  size_t end = response.find('\n', start);
  return response.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

double GateReport::accuracy() const { return cases.empty() ? 0.0 : double(passed()) / double(cases.size()); }

int GateReport::passed() const {
  int n = 0;
  for (const auto& c : cases) n += c.passed;
  return n;
}

double GateReport::avg_generation_seconds() const {
  double total = 0;
  for (const auto& c : cases) total += c.seconds;
  return cases.empty() ? 0 : total / double(cases.size());
}

double GateReport::tokens_per_second() const {
  double secs = 0;
  int tokens = 0;
  for (const auto& c : cases) {
    secs += c.seconds;
    tokens += c.tokens;
  }
  return secs > 0 ? tokens / secs : 0;
}

nlohmann::json GateReport::to_json() const {
  nlohmann::json cs = nlohmann::json::array();
  for (const auto& c : cases) {
    cs.push_back({{"prompt", c.prompt},
                  {"expected", expect_name(c.expected)},
                  {"got", c.called_tool ? "tool" : "direct"},
                  {"tools_called", c.tools_called},
                  {"passed", c.passed},
                  {"why", c.why},
                  {"first_line", c.first_line()},
                  {"response", c.response},
                  {"form", c.form},
                  {"notes", c.notes},
                  {"seconds", c.seconds},
                  {"tokens", c.tokens}});
  }
  return {{"version", 1},
          {"suite", suite},
          {"runner", runner},
          {"accuracy", accuracy()},
          {"passed", passed()},
          {"total", cases.size()},
          {"load_seconds", load_seconds},
          {"avg_generation_seconds", avg_generation_seconds()},
          {"tokens_per_second", tokens_per_second()},
          {"cases", cs}};
}

Result<GateReport> GateReport::from_json(const nlohmann::json& j) {
  auto corrupt = [](const std::string& why) { return make_error(Errc::kCorrupt, "gate report", "{}", why); };
  if (!j.is_object()) return corrupt("not a JSON object");
  if (j.contains("version") && j["version"] != 1)
    return corrupt(fmt::format("unknown version {}", j["version"].dump()));
  if (!j.contains("cases") || !j["cases"].is_array()) return corrupt("no 'cases' list");
  GateReport r;
  try {
    r.suite = j.value("suite", std::string());
    r.runner = j.value("runner", nlohmann::json());
    r.load_seconds = j.value("load_seconds", 0.0);
    for (const auto& c : j["cases"]) {
      CaseVerdict v;
      v.prompt = c.at("prompt").get<std::string>();
      const std::string expected = c.at("expected").get<std::string>();
      if (expected != "tool" && expected != "direct") return corrupt(fmt::format("expected '{}'", expected));
      v.expected = expected == "tool" ? Expect::kTool : Expect::kDirect;
      v.called_tool = c.at("got").get<std::string>() == "tool";
      v.tools_called = c.value("tools_called", std::vector<std::string>());
      v.passed = c.at("passed").get<bool>();
      v.why = c.value("why", std::string());
      v.response = c.at("response").get<std::string>();
      v.form = c.value("form", std::string());
      v.notes = c.value("notes", std::vector<std::string>());
      v.seconds = c.value("seconds", 0.0);
      v.tokens = c.value("tokens", 0);
      r.cases.push_back(std::move(v));
    }
  } catch (const nlohmann::json::exception& e) {
    return corrupt(e.what());
  }
  return r;
}

std::string GateReport::render(bool failures_only) const {
  std::string out;
  for (const auto& c : cases) {
    if (failures_only && c.passed) continue;
    std::string first = c.first_line();
    if (first.size() > 70) first = first.substr(0, 67) + "...";
    out += fmt::format("  {} \"{}\" expected {} got {} | {}\n", c.passed ? "ok  " : "FAIL", c.prompt,
                       expect_name(c.expected), c.called_tool ? "tool" : "direct", first);
    if (!c.passed && !c.why.empty()) out += fmt::format("       {}\n", c.why);
  }
  return out;
}

Result<GateReport> run_gate(Runner& runner, const Suite& suite, const nlohmann::json& runner_config, Reporter& reporter,
                            const std::string& label, const std::atomic<bool>* cancelled) {
  GateReport report;
  report.suite = suite.name;
  report.runner = canonical_runner(runner_config);
  report.load_seconds = runner.load_seconds();
  const auto tools = suite.tool_names();
  reporter.progress(label, 0, suite.cases.size(), "cases");
  for (size_t i = 0; i < suite.cases.size(); ++i) {
    if (cancelled && *cancelled) return make_error(Errc::kCancelled, label, "interrupted after {} cases", i);
    const Case& c = suite.cases[i];
    MB_ASSIGN(RunnerReply reply, runner.respond(suite, c));
    Classification k = classify(reply.text, reply.tool_calls, suite.rule, tools);
    CaseVerdict v;
    v.prompt = c.prompt;
    v.expected = c.expect;
    v.called_tool = k.is_tool_call;
    for (const auto& call : k.calls) v.tools_called.push_back(call.name);
    v.passed = case_passes(c, k, &v.why);
    v.response = reply.text;
    if (reply.tool_calls.is_array() && !reply.tool_calls.empty() && v.response.empty())
      v.response = reply.tool_calls.dump();
    v.form = k.form;
    v.notes = k.notes;
    v.seconds = reply.seconds;
    v.tokens = reply.completion_tokens;
    reporter.report({EventKind::kMessage,
                     Level::kDebug,
                     label,
                     fmt::format("case {}/{} {}: \"{}\" → {}", i + 1, suite.cases.size(), v.passed ? "ok" : "FAIL",
                                 c.prompt, v.called_tool ? "tool" : "direct"),
                     {}});
    reporter.progress(label, i + 1, suite.cases.size(), "cases");
    report.cases.push_back(std::move(v));
  }
  return report;
}

}  // namespace mb::gate

namespace mb::gate {

Result<GateReport> run_gate(const FileSystem& fs, const Suite& suite, const RunnerTarget& target,
                            const nlohmann::json& runner_config, Reporter& reporter, const std::string& label) {
  MB_ASSIGN(auto runner, make_runner(fs, runner_config, target));
  return run_gate(*runner, suite, runner_config, reporter, label);
}

Status check_thresholds(const GateReport& report, const GateThresholds& thresholds) {
  if (report.cases.empty()) return make_error(Errc::kGateFailed, "gate", "suite '{}' has no cases", report.suite);
  if (report.accuracy() + 1e-9 >= thresholds.min_accuracy) return {};
  return make_error(Errc::kGateFailed, "gate",
                    "accuracy {:.0f}% ({}/{}) is below the minimum {:.0f}% on suite '{}':\n{}", 100 * report.accuracy(),
                    report.passed(), report.cases.size(), 100 * thresholds.min_accuracy, report.suite,
                    report.render(true));
}

}  // namespace mb::gate
