#include "rules/gate.h"

#include <cmath>

#include "gate/gate.h"
#include "gate/runner.h"
#include "graph/params.h"

namespace mb {
namespace {

const std::vector<std::string> kGateKeys = {"suite",       "min_accuracy",       "min_delta_retention",
                                            "max_mean_kl", "min_top1_agreement", "runner"};

}  // namespace

Result<fs::path> suite_file_of(const FileSystem& fs, fs::path suite_file) {
  if (auto st = fs.stat(suite_file); st.ok() && st->is_dir) {
    MB_ASSIGN(auto names, fs.list_dir(suite_file));
    std::vector<std::string> yaml;
    for (const auto& n : names)
      if (n.size() > 5 && (n.ends_with(".yaml") || n.ends_with(".yml"))) yaml.push_back(n);
    if (yaml.size() != 1)
      return make_error(Errc::kInvalidInput, suite_file.string(), "a suite directory must hold exactly one .yaml file");
    suite_file /= yaml[0];
  }
  return suite_file;
}

namespace {

Result<nlohmann::json> parse_runner(const TargetReader& r, const YAML::Node& node) {
  const YamlReader& y = r.yaml();
  MB_TRY(y.expect_map(node, "runner"));
  MB_ASSIGN(auto runner, y.to_json(node));
  if (!runner.contains("type") || !runner["type"].is_string())
    return y.error(node, "runner needs 'type' (native, command or openai)");
  const std::string type = runner["type"];
  if (type != "native" && type != "command" && type != "openai") {
    const std::string h = did_you_mean(type, {"native", "command", "openai"});
    return y.error(node["type"], fmt::format("runner type must be native, command or openai, got '{}'{}", type,
                                             h.empty() ? "" : fmt::format(" (did you mean '{}'?)", h)));
  }
  nlohmann::json config = nlohmann::json::parse(runner.dump());
  // The runner's own keys are checked now, not when the gate step runs after
  // the fuse: a typo in runner.server is bad input, and nothing has run yet.
  if (Status st = gate::validate_runner_config(config); !st.ok()) return y.error(node, st.error().to_string());
  return config;
}

Result<double> fraction_at(const YamlReader& y, const YAML::Node& node, const std::string& key) {
  MB_ASSIGN(double x, y.number(node, key));
  if (!(x >= 0.0 && x <= 1.0)) return y.error(node, fmt::format("'{}' must be between 0 and 1, got {}", key, x));
  return x;
}

}  // namespace

Result<std::optional<GateDecl>> parse_gate(TargetReader& r) {
  const YAML::Node g = r.get("gate");
  if (!g || g.IsNull()) return std::optional<GateDecl>();
  const YamlReader& y = r.yaml();
  MB_TRY(y.check_keys(g, fmt::format("gate of '{}'", r.target()), kGateKeys));
  GateDecl gate;
  if (!g["suite"]) return y.error(g, fmt::format("gate of '{}' needs 'suite'", r.target()));
  MB_ASSIGN(gate.suite, r.reference_at(g["suite"], "suite"));
  if (g["min_accuracy"]) {
    MB_ASSIGN(gate.min_accuracy, fraction_at(y, g["min_accuracy"], "min_accuracy"));
  }
  if (g["min_delta_retention"]) {
    MB_ASSIGN(double x, fraction_at(y, g["min_delta_retention"], "min_delta_retention"));
    gate.min_delta_retention = x;
  }
  if (g["min_top1_agreement"]) {
    MB_ASSIGN(double x, fraction_at(y, g["min_top1_agreement"], "min_top1_agreement"));
    gate.min_top1_agreement = x;
  }
  if (g["max_mean_kl"]) {
    // A divergence in nats: any non-negative number.
    MB_ASSIGN(double x, y.number(g["max_mean_kl"], "max_mean_kl"));
    if (!(x >= 0.0 && std::isfinite(x)))
      return y.error(g["max_mean_kl"], fmt::format("'max_mean_kl' must be a non-negative number, got {}", x));
    gate.max_mean_kl = x;
  }
  if (g["runner"]) {
    MB_ASSIGN(gate.runner, parse_runner(r, g["runner"]));
  }
  return std::optional<GateDecl>(std::move(gate));
}

Result<GateStep> add_gate_step(TargetExpansion& x, const GateDecl& gate, const InputRef& model,
                               const std::vector<InputRef>& runtime_adapters, const std::string& role) {
  MB_ASSIGN(InputRef suite, x.resolve(gate.suite, "suite"));
  std::vector<InputRef> in = {model};
  in.front().role = "model";
  for (size_t i = 0; i < runtime_adapters.size(); ++i) {
    InputRef a = runtime_adapters[i];
    a.role = fmt::format("adapter.{}", i);
    in.push_back(a);
  }
  in.push_back(suite);
  // Thresholds are checks, not params: changing min_accuracy re-checks the
  // cached verdict instead of re-running the suite.
  GateStep g;
  g.step = x.add_step("gate", {{"runner", gate.runner}}, in, role);
  MB_ASSIGN(g.accuracy, x.make_check(g.step, kAccuracy, gate.min_accuracy));
  return g;
}

Status expand_gate(TargetExpansion& x, const GateDecl& gate, const InputRef& model,
                   const std::vector<InputRef>& runtime_adapters) {
  MB_ASSIGN(GateStep g, add_gate_step(x, gate, model, runtime_adapters, "gate"));
  x.plan().marks[kGateMark] = g.step;
  x.plan().checks.push_back(g.accuracy);
  return {};
}

Status GateRule::check_params(const nlohmann::json& params) const {
  nlohmann::json runner;
  ParamReader r(params);
  r.required("runner", runner);
  MB_TRY(r.finish());
  if (!runner.is_object()) return make_error(Errc::kInternal, "", "parameter 'runner' must be an object");
  return {};
}

std::vector<ReportField> GateRule::report_fields() const { return {{kAccuracy, "/accuracy", /*percent=*/true}}; }

Status GateRule::run(StepContext& ctx) const {
  const StepInput* model = ctx.input("model");
  const StepInput* suite_in = ctx.input("suite");
  if (!model || !suite_in) return make_error(Errc::kInternal, ctx.step_label, "gate step without model or suite");
  MB_ASSIGN(fs::path suite_file, suite_file_of(ctx.fs, suite_in->path));
  MB_ASSIGN(gate::Suite suite, gate::load_suite(ctx.fs, suite_file));
  gate::RunnerTarget target;
  target.model_dir = model->path;
  for (const StepInput* a : ctx.inputs_with_prefix("adapter.")) target.adapters.push_back(a->path);
  target.threads = ctx.threads;
  const nlohmann::json& runner_config = ctx.params.at("runner");
  ctx.reporter.info(fmt::format("[{}] running {} cases of suite '{}'", ctx.step_label, suite.cases.size(), suite.name));
  MB_ASSIGN(auto runner, gate::make_runner(ctx.fs, runner_config, target));
  MB_ASSIGN(gate::GateReport report,
            gate::run_gate(*runner, suite, runner_config, ctx.reporter, ctx.step_label, ctx.cancelled));
  ctx.report = report.to_json();
  ctx.reporter.info(fmt::format("[{}] accuracy {:.0f}% ({}/{})", ctx.step_label, 100 * report.accuracy(),
                                report.passed(), report.cases.size()));
  // gate.json is the step's output, so it must be a pure function of the
  // inputs (--check compares it byte for byte): the verdict and responses
  // without the timings. The timings stay in the step's report.
  nlohmann::json verdict = ctx.report;
  for (const char* timing : {"load_seconds", "avg_generation_seconds", "tokens_per_second"}) verdict.erase(timing);
  for (auto& c : verdict["cases"]) c.erase("seconds");
  return write_file_atomic(ctx.fs, ctx.output_dir / "gate.json", verdict.dump(2) + "\n");
}

}  // namespace mb
