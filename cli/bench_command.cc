// `modelbuild bench [CONFIG...]`: compare configurations (targets) on size,
// peak memory, speed and accuracy; print a Markdown table, write JSON and an
// SVG chart. It builds what the configurations need first, but a failing
// gate does not stop it: the failing artifact is measured all the same and
// the failure shows in the table, since that is what the comparison is for.
#include <cstdio>

#include "cli/commands.h"
#include "cli/printing.h"
#include "gate/bench.h"
#include "gate/bench_report.h"
#include "gate/fidelity.h"
#include "gate/suite.h"
#include "graph/plan.h"
#include "inference/engine.h"
#include "release/git_source.h"
#include "rules/fidelity.h"
#include "rules/fuse.h"
#include "rules/gate.h"
#include "rules/model_target.h"

namespace mb::cli {
namespace {

// Where an input of a step lives after the build.
Result<fs::path> input_path(const Recipe& recipe, const BuildReport& report, const InputRef& ref) {
  if (ref.is_source()) {
    const SourceDecl* src = recipe.find_source(ref.source);
    if (!src) return make_error(Errc::kInvalidInput, ref.source, "unknown source");
    return src->path;
  }
  const StepResult& r = report.steps.at(size_t(ref.step));
  if (r.view.empty())
    return make_error(Errc::kStepFailed, ref.role, "its step did not produce an output ({})", step_state_name(r.state));
  return r.view;
}

// "4" for a quantized model, else its float dtype, from the artifact's config.json.
std::string bits_of(const FileSystem& fs, const fs::path& model_dir) {
  auto text = fs.read_file(model_dir / "config.json");
  if (!text.ok()) return "?";
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return "?";
  if (j.contains("quantization") && j["quantization"].is_object() && j["quantization"].contains("bits"))
    return j["quantization"]["bits"].dump();
  return j.value("torch_dtype", std::string("float"));
}

struct SuiteChoice {
  fs::path file;
  nlohmann::json runner;
  std::optional<double> min_accuracy;
};

// The suite, runner and threshold of a target's gate, read from its plan:
// the gate step's suite input and runner parameter, and its accuracy check.
std::optional<SuiteChoice> gate_suite(const Recipe& recipe, const Plan& plan, const BuildReport& report,
                                      const TargetPlan& tp) {
  const int gate = tp.marked(kGateMark);
  if (gate < 0) return std::nullopt;
  SuiteChoice choice;
  const Step& step = plan.steps[size_t(gate)];
  choice.runner = step.params.value("runner", nlohmann::json::object());
  for (const InputRef& in : step.inputs)
    if (in.role == "suite")
      if (auto p = input_path(recipe, report, in); p.ok()) choice.file = *p;
  for (const Check& c : tp.checks)
    if (c.step == gate && c.what == kAccuracy) choice.min_accuracy = c.min;
  return choice;
}

// The gate's cached verdict for this exact artifact, when there is one (it
// is what the build decided on).
std::optional<gate::GateReport> cached_verdict(const BuildReport& report, const TargetPlan& tp) {
  const int gate = tp.marked(kGateMark);
  if (gate < 0) return std::nullopt;
  const StepResult& gs = report.steps[size_t(gate)];
  if (gs.state != StepState::kCached && gs.state != StepState::kBuilt) return std::nullopt;
  auto r = gate::GateReport::from_json(gs.report);
  if (!r.ok()) return std::nullopt;
  return std::move(*r);
}

std::optional<double> retention_of(const BuildReport& report, const TargetPlan& tp) {
  const int s = tp.marked(kRetentionMark);
  if (s < 0) return std::nullopt;
  const auto& rr = report.steps[size_t(s)].report;
  const auto ptr = nlohmann::json::json_pointer("/retention/retained");
  if (rr.contains(ptr) && rr[ptr].is_number()) return rr[ptr].get<double>();
  return std::nullopt;
}

// A candidate of a search as a plain target plan: its artifact, checks and marks.
TargetPlan candidate_plan(const TargetPlan& tp, size_t k) {
  TargetPlan one = tp;
  const Candidate& cand = tp.candidates[k];
  one.artifact = cand.artifact;
  one.checks = cand.checks;
  one.marks = cand.marks;
  one.candidates.clear();
  return one;
}

struct BenchContext {
  Session& s;
  const Plan& plan;
  const BuildReport& report;
  gate::BenchZygote& zygote;
  std::optional<SuiteChoice> fallback;
  int runs = 1;
  // Reference logits computed by the bench itself, by (base, adapters, suite).
  std::map<std::string, gate::ReferenceLogits> references;
};

// The fidelity step's figures for this exact artifact, when the build ran it
// or found it cached.
bool fidelity_from_step(const BenchContext& c, const TargetPlan& tp, gate::BenchRow& row) {
  const int f = tp.marked(kFidelityMark);
  if (f < 0) return false;
  const StepResult& r = c.report.steps[size_t(f)];
  if (r.state != StepState::kCached && r.state != StepState::kBuilt) return false;
  if (!r.report.contains("mean_kl") || !r.report.contains("top1_agreement")) return false;
  row.mean_kl = r.report["mean_kl"].get<double>();
  row.max_kl = r.report.value("max_kl", 0.0);
  row.top1_agreement = r.report["top1_agreement"].get<double>();
  row.fidelity_source = "fidelity";
  return true;
}

// A model target's base or adapter: a source's path or a target's artifact.
Result<fs::path> model_input(const BenchContext& c, const std::string& name) {
  if (const SourceDecl* src = c.s.recipe.find_source(name)) return src->path;
  auto it = c.plan.targets.find(name);
  if (it == c.plan.targets.end() || !it->second.artifact)
    return make_error(Errc::kInvalidInput, name, "has no artifact to use as a reference");
  return input_path(c.s.recipe, c.report, *it->second.artifact);
}

// Without a fidelity step, the bench measures the figures itself against the
// target's reference (its base with its adapters at run time), computed once
// per (base, adapters, suite). Targets without adapters have no reference
// other than themselves and get none.
Status fidelity_in_bench(BenchContext& c, const TargetPlan& tp, const fs::path& suite_file, const gate::Suite& suite,
                         const gate::RunnerTarget& artifact, gate::BenchRow& row) {
  const TargetDecl* decl = c.s.recipe.find_target(tp.name);
  const ModelSpec* m = decl ? decl->as<ModelSpec>() : nullptr;
  if (!m || m->adapters.empty()) return {};
  inference::LoadOptions ref_options;
  ref_options.threads = artifact.threads;
  MB_ASSIGN(fs::path base, model_input(c, m->base));
  std::string key = base.string() + "\n" + suite_file.string();
  for (const std::string& a : m->adapters) {
    MB_ASSIGN(fs::path p, model_input(c, a));
    ref_options.adapters.push_back(p);
    key += "\n" + p.string();
  }
  auto it = c.references.find(key);
  if (it == c.references.end()) {
    MB_ASSIGN(auto engine, inference::Engine::load(*c.s.fs, base, ref_options));
    MB_ASSIGN(gate::ReferenceLogits ref, gate::compute_reference(*engine, suite, kContinuationTokens));
    it = c.references.emplace(key, std::move(ref)).first;
  }
  inference::LoadOptions options;
  options.adapters = artifact.adapters;
  options.threads = artifact.threads;
  MB_ASSIGN(auto engine, inference::Engine::load(*c.s.fs, artifact.model_dir, options));
  MB_ASSIGN(gate::FidelityReport f, gate::measure_fidelity(*engine, it->second));
  row.mean_kl = f.overall.mean_kl;
  row.max_kl = f.overall.max_kl;
  row.top1_agreement = f.overall.top1_agreement;
  row.fidelity_source = "bench";
  return {};
}

// Measures one configuration: its artifact (and run-time adapters) on its
// gate's suite, or the fallback suite.
// A search's candidate is measured as a configuration of its own, named
// "TARGET[candidate]"; `search` is the search's verdict on it.
Result<gate::BenchRow> measure_row(BenchContext& c, const std::string& name, const TargetPlan& tp,
                                   const CandidateResult* search = nullptr) {
  MB_ASSIGN(fs::path model_dir, input_path(c.s.recipe, c.report, *tp.artifact));
  gate::RunnerTarget target;
  target.model_dir = model_dir;
  target.threads = c.s.build.threads_per_step;
  std::vector<fs::path> files = {model_dir};
  for (const InputRef& a : tp.runtime_inputs) {
    MB_ASSIGN(fs::path p, input_path(c.s.recipe, c.report, a));
    target.adapters.push_back(p);
    files.push_back(p);
  }
  std::optional<SuiteChoice> choice = gate_suite(c.s.recipe, c.plan, c.report, tp);
  if (!choice) choice = c.fallback;
  if (!choice)
    return make_error(Errc::kInvalidInput, name,
                      "has no gate and the recipe has no suite to borrow; pass --suite FILE");
  MB_ASSIGN(fs::path file, suite_file_of(*c.s.fs, choice->file));
  MB_ASSIGN(gate::Suite suite, gate::load_suite(*c.s.fs, file));
  gate::BenchRow row;
  row.config = name;
  row.bits = bits_of(*c.s.fs, model_dir);
  row.min_accuracy = choice->min_accuracy;
  MB_ASSIGN(row.size_bytes, gate::disk_size(files));
  c.s.reporter->info(fmt::format("bench {}: running {} cases", name, suite.cases.size()));
  MB_ASSIGN(auto measured, c.zygote.measure(file, target, choice->runner, c.runs));
  row.peak_memory_bytes = measured.peak_memory_bytes;
  row.load_seconds = measured.report.load_seconds;
  row.avg_generation_seconds = measured.report.avg_generation_seconds();
  row.tokens_per_second = measured.report.tokens_per_second();
  const std::optional<gate::GateReport> cached = cached_verdict(c.report, tp);
  const gate::GateReport& verdict = cached ? *cached : measured.report;
  row.accuracy = verdict.accuracy();
  row.passed = verdict.passed();
  row.total = int(verdict.cases.size());
  row.accuracy_source = cached ? "gate" : "bench";
  row.retention = retention_of(c.report, tp);
  if (!fidelity_from_step(c, tp, row))
    if (Status st = fidelity_in_bench(c, tp, file, suite, target, row); !st.ok())
      c.s.reporter->warn(fmt::format("bench {}: no fidelity figures: {}", name, st.error().to_string()));
  if (search) {
    row.gate = search->verdict == "passed" ? gate::GateOutcome::kPassed : gate::GateOutcome::kFailed;
    row.failures = search->reasons;
  } else if (tp.marked(kGateMark) >= 0) {
    row.gate = gate::GateOutcome::kPassed;
    for (const TargetResult& t : c.report.targets)
      if (t.name == name && t.state == TargetState::kFailed) {
        row.gate = gate::GateOutcome::kFailed;
        row.failures = t.failures;
      }
  }
  return row;
}

// The suite for configurations without a gate: --suite, else the first gate's.
std::optional<SuiteChoice> fallback_suite(const Session& s, const std::string& suite_opt) {
  std::optional<SuiteChoice> fallback;
  for (const TargetDecl& t : s.recipe.targets) {
    const ModelSpec* m = t.as<ModelSpec>();
    if (fallback || !m || !m->gate) continue;
    if (const SourceDecl* src = s.recipe.find_source(m->gate->suite))
      fallback = SuiteChoice{src->path, m->gate->runner, m->gate->min_accuracy};
  }
  if (suite_opt.empty()) return fallback;
  fs::path p = suite_opt;
  if (p.is_relative()) p = fs::absolute(p);
  return SuiteChoice{p, fallback ? fallback->runner : nlohmann::json{{"type", "native"}},
                     fallback ? fallback->min_accuracy : std::nullopt};
}

// Writes the table, JSON and chart; returns an exit status.
int write_outputs(Session& s, const GlobalOptions& g, const std::vector<gate::BenchRow>& rows,
                  const std::string& json_out, const std::string& svg_out, const std::string& markdown_out) {
  const std::string table = gate::render_markdown(rows);
  // With --json, stdout carries JSON events only.
  if (!g.json) std::fwrite(table.data(), 1, table.size(), stdout);
  std::fflush(stdout);
  const fs::path build_dir = s.build.build_dir;
  auto write = [&](const std::string& path, const fs::path& fallback_path, const std::string& text) -> int {
    fs::path p = path.empty() ? fallback_path : fs::absolute(path);
    Status st = s.fs->create_dirs(p.parent_path());
    if (st.ok()) st = write_file_atomic(*s.fs, p, text);
    if (!st.ok()) return report_error(*s.reporter, st.error());
    s.reporter->info(fmt::format("wrote {}", relative_to_cwd(p)));
    return 0;
  };
  int rc = write(json_out, build_dir / "bench.json", gate::render_json(rows).dump(2) + "\n");
  if (rc == 0) rc = write(svg_out, build_dir / "bench.svg", gate::render_svg(rows));
  if (rc == 0 && !markdown_out.empty()) rc = write(markdown_out, {}, table);
  return rc;
}

// Builds what the configurations need, past failures (-k), so that every
// configuration that has an artifact can be measured.
Result<BuildReport> build_for_bench(Session& s, const Plan& plan) {
  s.build.keep_going = true;
  Builder builder(*s.fs, *s.reporter, s.rules, s.build);
  MB_TRY(install_git_sources(*s.fs, s.recipe, plan, builder).status());
  return builder.build(s.recipe, plan);
}

}  // namespace

int bench_command(const std::vector<std::string>& args) {
  CLI::App app("Compare configurations: size on disk, peak memory, load and generation time, accuracy, retention.",
               "bench");
  GlobalOptions g;
  add_global_options(app, g);
  std::vector<std::string> configs;
  int runs = 1;
  std::string json_out, svg_out, markdown_out, suite_opt;
  app.add_option("configs", configs, "targets to compare (default: every model target)");
  app.add_option("--runs", runs, "timed runs per configuration; the fastest counts")->check(CLI::Range(1, 100));
  app.add_option("--json-out", json_out, "write the results as JSON here (default: build/bench.json)");
  app.add_option("--svg", svg_out, "write the chart here (default: build/bench.svg)");
  app.add_option("--markdown", markdown_out, "also write the Markdown table here");
  app.add_option("--suite", suite_opt, "suite for configurations without a gate (default: the recipe's first gate's)");
  if (int rc = parse_args(app, args); rc >= 0) return rc;

  auto session = open_session(g);
  if (!session.ok()) return report_error(session.error());
  Session& s = *session;
  if (configs.empty())
    for (const TargetDecl& t : s.recipe.targets)
      if (t.kind == ModelTargetKind().name()) configs.push_back(t.name);
  for (const std::string& c : configs) {
    const TargetDecl* t = s.recipe.find_target(c);
    if (t && t->kind != ModelTargetKind().name())
      return report_error(*s.reporter,
                          make_error(Errc::kInvalidInput, c, "a {} target is not a model to bench", t->kind));
  }
  auto plan = make_plan(s.recipe, s.rules, configs);
  if (!plan.ok()) return report_error(*s.reporter, plan.error());

  // The measuring processes fork from a zygote started now, before the build
  // loads anything into this process, so every row starts from the same
  // baseline memory.
  auto zygote = gate::BenchZygote::start();
  if (!zygote.ok()) return report_error(*s.reporter, zygote.error());
  auto report = build_for_bench(s, *plan);
  if (!report.ok()) return report_error(*s.reporter, report.error());

  BenchContext c{s, *plan, *report, **zygote, fallback_suite(s, suite_opt), runs, {}};
  std::vector<gate::BenchRow> rows;
  int exit = 0;
  auto add = [&](const std::string& name, const TargetPlan& tp, const CandidateResult* verdict) {
    auto row = measure_row(c, name, tp, verdict);
    if (!row.ok()) {
      s.reporter->error(fmt::format("bench {}: {}", name, row.error().to_string()));
      exit = std::max(exit, exit_code_for(row.error().code));
      return;
    }
    rows.push_back(std::move(*row));
  };
  for (const std::string& name : plan->requested) {
    const TargetPlan& tp = plan->targets.at(name);
    if (tp.artifact) add(name, tp, nullptr);
    const TargetResult* t = find_target_result(*report, name);
    for (size_t k = 0; t && k < tp.candidates.size() && k < t->candidates.size(); ++k) {
      if (t->candidates[k].verdict == "untried") continue;  // never built: a smaller one passed
      const bool chosen = static_cast<int>(k) == t->winner;
      add(fmt::format("{}[{}]{}", name, tp.candidates[k].name, chosen ? " chosen" : ""), candidate_plan(tp, k),
          &t->candidates[k]);
    }
  }
  return std::max(write_outputs(s, g, rows, json_out, svg_out, markdown_out), exit);
}

}  // namespace mb::cli
