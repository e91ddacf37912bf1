#include "rules/gate.h"

#include "gate/gate.h"

namespace mb {

Status GateRule::run(StepContext& ctx) const {
  const StepInput* model = ctx.input("model");
  const StepInput* suite_in = ctx.input("suite");
  if (!model || !suite_in) return make_error(Errc::kInternal, ctx.step_label, "gate step without model or suite");
  fs::path suite_file = suite_in->path;
  if (auto st = ctx.fs.stat(suite_file); st.ok() && st->is_dir) {
    // A directory source: take its only YAML file.
    MB_ASSIGN(auto names, ctx.fs.list_dir(suite_file));
    std::vector<std::string> yaml;
    for (const auto& n : names)
      if (n.size() > 5 && (n.ends_with(".yaml") || n.ends_with(".yml"))) yaml.push_back(n);
    if (yaml.size() != 1)
      return make_error(Errc::kInvalidInput, suite_file.string(), "a suite directory must hold exactly one .yaml file");
    suite_file /= yaml[0];
  }
  MB_ASSIGN(gate::Suite suite, gate::load_suite(ctx.fs, suite_file));
  gate::RunnerTarget target;
  target.model_dir = model->path;
  for (const StepInput* a : ctx.inputs_with_prefix("adapter.")) target.adapters.push_back(a->path);
  target.threads = ctx.threads;
  const nlohmann::json runner_config = ctx.params.value("runner", nlohmann::json::object());
  ctx.reporter.info(fmt::format("[{}] running {} cases of suite '{}'", ctx.step_label, suite.cases.size(), suite.name));
  MB_ASSIGN(auto runner, gate::make_runner(ctx.fs, runner_config, target));
  MB_ASSIGN(gate::GateReport report, gate::run_gate(*runner, suite, runner_config, ctx.reporter, ctx.step_label));
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
