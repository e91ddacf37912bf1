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
#include "gate/suite.h"
#include "graph/plan.h"
#include "release/git_source.h"

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

// A suite source may be a directory holding one YAML file, as for the gate step.
Result<fs::path> suite_file(const FileSystem& fs, fs::path p) {
  if (auto st = fs.stat(p); st.ok() && st->is_dir) {
    MB_ASSIGN(auto names, fs.list_dir(p));
    std::vector<std::string> yaml;
    for (const auto& n : names)
      if (n.ends_with(".yaml") || n.ends_with(".yml")) yaml.push_back(n);
    if (yaml.size() != 1)
      return make_error(Errc::kInvalidInput, p.string(), "a suite directory must hold exactly one .yaml file");
    p /= yaml[0];
  }
  return p;
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
      if (t.is_model()) configs.push_back(t.name);
  for (const std::string& c : configs) {
    const TargetDecl* t = s.recipe.find_target(c);
    if (t && !t->is_model())
      return report_error(*s.reporter, make_error(Errc::kInvalidInput, c, "a command target is not a model to bench"));
  }
  auto plan = make_plan(s.recipe, configs);
  if (!plan.ok()) return report_error(*s.reporter, plan.error());

  // The measuring processes fork from a zygote started now, before the build
  // loads anything into this process, so every row starts from the same
  // baseline memory.
  auto zygote = gate::BenchZygote::start();
  if (!zygote.ok()) return report_error(*s.reporter, zygote.error());

  // Build first (cache hits are instant); keep going past failures so every
  // configuration that has an artifact can be measured.
  s.build.keep_going = true;
  BuildReport report;
  {
    Builder builder(*s.fs, *s.reporter, s.rules, s.build);
    auto git = install_git_sources(*s.fs, s.recipe, *plan, builder);
    if (!git.ok()) return report_error(*s.reporter, git.error());
    auto built = builder.build(s.recipe, *plan);
    if (!built.ok()) return report_error(*s.reporter, built.error());
    report = std::move(*built);
  }

  // The suite for targets without a gate: --suite, else the first gate's.
  std::optional<SuiteChoice> fallback;
  for (const TargetDecl& t : s.recipe.targets)
    if (t.is_model() && t.model().gate && !fallback) {
      const SourceDecl* src = s.recipe.find_source(t.model().gate->suite);
      if (src) fallback = SuiteChoice{src->path, t.model().gate->runner, t.model().gate->min_accuracy};
    }
  if (!suite_opt.empty()) {
    fs::path p = suite_opt;
    if (p.is_relative()) p = fs::absolute(p);
    fallback = SuiteChoice{p, fallback ? fallback->runner : nlohmann::json{{"type", "native"}},
                           fallback ? fallback->min_accuracy : std::nullopt};
  }

  std::vector<gate::BenchRow> rows;
  int exit = 0;
  for (const std::string& name : plan->requested) {
    const TargetPlan& tp = plan->targets.at(name);
    const ModelTarget& m = s.recipe.find_target(name)->model();
    auto fail = [&](const Error& e) {
      s.reporter->error(fmt::format("bench {}: {}", name, e.to_string()));
      exit = std::max(exit, exit_code_for(e.code));
    };
    if (!tp.artifact) continue;
    auto model_dir = input_path(s.recipe, report, *tp.artifact);
    if (!model_dir.ok()) {
      fail(model_dir.error());
      continue;
    }
    gate::RunnerTarget target;
    target.model_dir = *model_dir;
    target.threads = s.build.threads_per_step;
    std::vector<fs::path> files = {*model_dir};
    bool ok = true;
    for (const InputRef& a : tp.runtime_adapters) {
      auto p = input_path(s.recipe, report, a);
      if (!p.ok()) {
        fail(p.error());
        ok = false;
        break;
      }
      target.adapters.push_back(*p);
      files.push_back(*p);
    }
    if (!ok) continue;

    SuiteChoice choice;
    if (m.gate) {
      const StepResult* gs = tp.gate_step >= 0 ? &report.steps[size_t(tp.gate_step)] : nullptr;
      const SourceDecl* src = s.recipe.find_source(m.gate->suite);
      fs::path p;
      if (src) {
        p = src->path;
      } else if (gs) {
        // The suite is another target's output: take it from the gate step's input.
        for (const InputRef& in : plan->steps[size_t(tp.gate_step)].inputs)
          if (in.role == "suite")
            if (auto q = input_path(s.recipe, report, in); q.ok()) p = *q;
      }
      choice = SuiteChoice{p, m.gate->runner, m.gate->min_accuracy};
    } else if (fallback) {
      choice = *fallback;
    } else {
      fail(make_error(Errc::kInvalidInput, name,
                      "has no gate and the recipe has no suite to borrow; pass --suite FILE"));
      continue;
    }
    auto file = suite_file(*s.fs, choice.file);
    if (!file.ok()) {
      fail(file.error());
      continue;
    }
    auto suite = gate::load_suite(*s.fs, *file);
    if (!suite.ok()) {
      fail(suite.error());
      continue;
    }

    gate::BenchRow row;
    row.config = name;
    row.bits = bits_of(*s.fs, *model_dir);
    row.min_accuracy = choice.min_accuracy;
    auto size = gate::disk_size(files);
    if (!size.ok()) {
      fail(size.error());
      continue;
    }
    row.size_bytes = *size;
    s.reporter->info(fmt::format("bench {}: running {} cases", name, suite->cases.size()));
    auto measured = (*zygote)->measure(*file, target, choice.runner, runs);
    if (!measured.ok()) {
      fail(measured.error());
      continue;
    }
    row.peak_memory_bytes = measured->peak_memory_bytes;
    row.load_seconds = measured->report.load_seconds;
    row.avg_generation_seconds = measured->report.avg_generation_seconds();
    row.tokens_per_second = measured->report.tokens_per_second();
    // Accuracy: the gate's cached verdict for this exact artifact when there
    // is one (it is what the build decided on), else this run's.
    const gate::GateReport* verdict = &measured->report;
    std::optional<gate::GateReport> cached;
    if (tp.gate_step >= 0) {
      const StepResult& gs = report.steps[size_t(tp.gate_step)];
      if (gs.state == StepState::kCached || gs.state == StepState::kBuilt)
        if (auto r = gate::GateReport::from_json(gs.report); r.ok()) cached = std::move(*r);
    }
    if (cached) verdict = &*cached;
    row.accuracy = verdict->accuracy();
    row.passed = verdict->passed();
    row.total = int(verdict->cases.size());
    row.accuracy_source = cached ? "gate" : "bench";
    if (tp.retention_step >= 0) {
      const auto& rr = report.steps[size_t(tp.retention_step)].report;
      const auto ptr = nlohmann::json::json_pointer("/retention/retained");
      if (rr.contains(ptr) && rr[ptr].is_number()) row.retention = rr[ptr].get<double>();
    }
    if (m.gate) {
      row.gate = gate::GateOutcome::kPassed;
      for (const TargetResult& t : report.targets)
        if (t.name == name && t.state == TargetState::kFailed) {
          row.gate = gate::GateOutcome::kFailed;
          row.failures = t.failures;
        }
    }
    rows.push_back(std::move(row));
  }

  const std::string table = gate::render_markdown(rows);
  // With --json, stdout carries JSON events only.
  if (!g.json) std::fwrite(table.data(), 1, table.size(), stdout);
  std::fflush(stdout);
  const fs::path build_dir = s.build.build_dir;
  auto write = [&](std::string path, const fs::path& fallback_path, const std::string& text) -> int {
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
  return std::max(rc, exit);
}

}  // namespace mb::cli
