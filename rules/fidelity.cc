#include "rules/fidelity.h"

#include "gate/fidelity.h"
#include "graph/params.h"
#include "inference/engine.h"
#include "rules/model_params.h"

namespace mb {
namespace {

// The engine on the step's "model" with its "adapter.N" applied at run time.
Result<std::unique_ptr<inference::Engine>> load_engine(const StepContext& ctx) {
  const StepInput* model = ctx.input("model");
  if (!model) return make_error(Errc::kInternal, ctx.step_label, "step without a model");
  inference::LoadOptions lo;
  for (const StepInput* a : ctx.inputs_with_prefix("adapter.")) lo.adapters.push_back(a->path);
  lo.threads = ctx.threads;
  return inference::Engine::load(ctx.fs, model->path, lo);
}

}  // namespace

Status ReferenceLogitsRule::check_params(const nlohmann::json& params) const {
  int tokens = 0;
  ParamReader r(params);
  r.required("continuation_tokens", tokens);
  MB_TRY(r.finish());
  if (tokens < 0) return make_error(Errc::kInternal, "", "continuation_tokens must not be negative");
  return {};
}

Status ReferenceLogitsRule::run(StepContext& ctx) const {
  const StepInput* suite_in = ctx.input("suite");
  if (!suite_in) return make_error(Errc::kInternal, ctx.step_label, "reference step without a suite");
  MB_ASSIGN(fs::path suite_file, suite_file_of(ctx.fs, suite_in->path));
  MB_ASSIGN(gate::Suite suite, gate::load_suite(ctx.fs, suite_file));
  MB_ASSIGN(auto engine, load_engine(ctx));
  const int tokens = ctx.params.at("continuation_tokens").get<int>();
  ctx.reporter.info(
      fmt::format("[{}] reference logits on {} cases of suite '{}'", ctx.step_label, suite.cases.size(), suite.name));
  MB_ASSIGN(gate::ReferenceLogits ref, gate::compute_reference(*engine, suite, tokens));
  ctx.report = {{"cases", ref.cases.size()}, {"positions", ref.positions()}, {"vocab", ref.vocab}};
  return gate::write_reference(ctx.fs, ctx.output_dir / "reference.safetensors", ref);
}

Status FidelityRule::check_params(const nlohmann::json& params) const {
  ParamReader r(params);
  return r.finish();
}

std::vector<ReportField> FidelityRule::report_fields() const {
  return {{kMeanKl, "/mean_kl", /*percent=*/false, /*lower_is_better=*/true},
          {kTop1Agreement, "/top1_agreement", /*percent=*/true}};
}

Status FidelityRule::run(StepContext& ctx) const {
  const StepInput* ref_in = ctx.input("reference");
  if (!ref_in) return make_error(Errc::kInternal, ctx.step_label, "fidelity step without a reference");
  MB_ASSIGN(gate::ReferenceLogits ref, gate::read_reference(ctx.fs, ref_in->path / "reference.safetensors"));
  MB_ASSIGN(auto engine, load_engine(ctx));
  MB_ASSIGN(gate::FidelityReport report, gate::measure_fidelity(*engine, ref));
  ctx.report = report.to_json();
  ctx.reporter.info(fmt::format("[{}] mean KL {:.4g}, max KL {:.4g}, top-1 agreement {:.1f}% over {} positions",
                                ctx.step_label, report.overall.mean_kl, report.overall.max_kl,
                                100 * report.overall.top1_agreement, report.overall.positions));
  // No timings in the report, so it is the output as is (--check compares it).
  return write_file_atomic(ctx.fs, ctx.output_dir / "fidelity.json", ctx.report.dump(2) + "\n");
}

Result<FidelityStep> add_fidelity_step(TargetExpansion& x, const GateDecl& gate, const InputRef& reference_base,
                                       const std::vector<InputRef>& reference_adapters, const InputRef& model,
                                       const std::vector<InputRef>& runtime_adapters, const std::string& role) {
  FidelityStep f;
  if (!gate.max_mean_kl && !gate.min_top1_agreement) return f;
  auto with_adapters = [](InputRef m, const std::vector<InputRef>& adapters) {
    m.role = "model";
    std::vector<InputRef> in = {m};
    for (size_t i = 0; i < adapters.size(); ++i) {
      in.push_back(adapters[i]);
      in.back().role = fmt::format("adapter.{}", i);
    }
    return in;
  };
  MB_ASSIGN(InputRef suite, x.resolve(gate.suite, "suite"));
  std::vector<InputRef> ref_in = with_adapters(reference_base, reference_adapters);
  ref_in.push_back(suite);
  const int ref = x.add_step("reference_logits", {{"continuation_tokens", kContinuationTokens}}, ref_in, "reference");
  std::vector<InputRef> in = with_adapters(model, runtime_adapters);
  in.push_back(InputRef{"reference", "", ref});
  f.step = x.add_step("fidelity", nlohmann::json::object(), in, role);
  if (gate.max_mean_kl) {
    MB_ASSIGN(Check c, x.make_check(f.step, kMeanKl, *gate.max_mean_kl));
    f.checks.push_back(std::move(c));
  }
  if (gate.min_top1_agreement) {
    MB_ASSIGN(Check c, x.make_check(f.step, kTop1Agreement, *gate.min_top1_agreement));
    f.checks.push_back(std::move(c));
  }
  return f;
}

}  // namespace mb
