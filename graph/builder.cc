#include "graph/builder.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "base/interrupt.h"
#include "base/parallel.h"
#include "cache/cache.h"
#include "cache/file_digests.h"
#include "cache/sweep.h"
#include "graph/explain.h"
#include "graph/preflight.h"
#include "graph/scheduler.h"
#include "graph/source_digests.h"
#include "graph/step_execution.h"
#include "graph/step_key.h"
#include "graph/target_checks.h"
#include "graph/target_outputs.h"

namespace mb {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Every source some step reads, in plan order.
std::vector<std::string> sources_read(const Plan& plan) {
  std::vector<std::string> names;
  for (const auto& step : plan.steps)
    for (const auto& in : step.inputs)
      if (in.is_source() && std::find(names.begin(), names.end(), in.source) == names.end()) names.push_back(in.source);
  return names;
}

// A lock or staging directory the cache refused: say what to do when the
// cache is read-only (a CI machine with a warmed cache mounted read-only).
Error explain_refusal(const Cache& cache, Error e) {
  if (!cache.read_only()) return e;
  e.message = fmt::format(
      "the cache {} is read-only and holds no result for this step; build it where the cache is writable, or point "
      "--cache (or MODELBUILD_CACHE) at a writable directory ({})",
      cache.root().string(), e.message);
  e.where.clear();  // the step's label already says where
  return e;
}

}  // namespace

const char* step_state_name(StepState s) {
  switch (s) {
    case StepState::kPending:
      return "pending";
    case StepState::kCached:
      return "cached";
    case StepState::kBuilt:
      return "built";
    case StepState::kFailed:
      return "failed";
    case StepState::kSkipped:
      return "skipped";
    case StepState::kStale:
      return "stale";
  }
  return "?";
}

const char* target_state_name(TargetState s) {
  switch (s) {
    case TargetState::kUpToDate:
      return "up to date";
    case TargetState::kBuilt:
      return "built";
    case TargetState::kFailed:
      return "failed";
    case TargetState::kStale:
      return "stale";
  }
  return "?";
}

const TargetResult* find_target_result(const BuildReport& report, const std::string& target) {
  for (const auto& t : report.targets)
    if (t.name == target) return &t;
  return nullptr;
}

bool BuildReport::ok() const {
  if (interrupted_by != 0) return false;
  for (const auto& t : targets)
    if (t.state == TargetState::kFailed) return false;
  return true;
}

int BuildReport::exit_code() const {
  if (interrupted_by != 0) return 128 + interrupted_by;
  int code = 0;
  for (const auto& t : targets)
    if (t.state == TargetState::kFailed) code = std::max(code, exit_code_for(t.failure_code));
  return code;
}

// One build or evaluation of a plan: carries each step's result through the
// phases. Worker threads write only their own step's result; the phases'
// shared state is guarded inside each phase.
class Builder::Run {
 public:
  Run(Builder& b, const Recipe& recipe, const Plan& plan, bool execute)
      : m_b(b),
        m_recipe(recipe),
        m_plan(plan),
        m_execute(execute && !b.m_options.dry_run),
        m_sources(recipe, b.m_cache->file_digests(), b.git_resolver, b.m_options.threads_per_step),
        m_preflight(b.m_fs, recipe, plan, m_sources),
        m_checks(plan, b.m_reporter),
        m_outputs(b.m_fs, *b.m_cache, b.m_reporter, b.m_options.build_dir),
        m_entries(plan.steps.size()) {
    m_report.steps.resize(plan.steps.size());
  }

  Result<BuildReport> go() {
    m_sources.hash_all(sources_read(m_plan));
    std::vector<std::vector<int>> deps, after;
    for (const auto& s : m_plan.steps) {
      deps.push_back(s.deps());
      after.push_back(s.after);
    }
    const int jobs = resolve_threads(m_b.m_options.jobs);
    Scheduler scheduler(m_execute ? jobs : 1, m_b.m_options.keep_going || !m_execute);
    // After an interrupt nothing new starts: every step not yet begun is skipped.
    auto states = scheduler.run(
        deps, [&](int i) { return run_step(i); },
        [&](int i) { return !(m_execute && interrupt::requested()) && m_checks.wanted(i); }, after);
    if (m_execute && interrupt::requested()) {
      m_report.interrupted_by = interrupt::signal_number();
      (void)sweep_temporaries(*m_b.m_cache, m_b.m_options.build_dir, SweepOwner::kSelf);
    }
    for (size_t i = 0; i < states.size(); ++i) {
      StepResult& r = m_report.steps[i];
      if (states[i] == NodeState::kSkipped && r.state == StepState::kPending) {
        r.state = m_execute ? StepState::kSkipped : StepState::kStale;
        if (!m_execute) r.why.push_back("an input is stale");
      }
    }
    (void)m_b.m_cache->save_state();
    (void)m_b.m_explain->save();
    // Bad input found before any step ran: nothing ran, nothing was cached.
    if (Status pf = m_preflight.verdict(); !pf.ok()) return pf.error();
    for (const auto& name : m_plan.requested) MB_TRY(finish_target(name));
    return std::move(m_report);
  }

 private:
  // The scheduler's task: true when the step succeeded (built or cached).
  bool run_step(int i) {
    const Step& step = m_plan.steps[static_cast<size_t>(i)];
    bool done = false;
    Status st = catch_all(step.label, [&]() -> Status {
      MB_ASSIGN(done, advance(i));
      return {};
    });
    if (!st.ok()) return fail(i, st.error());
    return done;
  }

  // Keys the step, then reuses or builds it. False (no error) when the step
  // is stale and this run only evaluates.
  Result<bool> advance(int i) {
    const Step& step = m_plan.steps[static_cast<size_t>(i)];
    StepResult& r = m_report.steps[static_cast<size_t>(i)];
    const Rule& rule = *m_b.m_rules.rule(step.kind);  // make_plan checked every kind
    MB_ASSIGN(KeyedStep k, key_step(step, rule, m_sources, m_b.m_cache->file_digests(), m_recipe.dir,
                                    [&](int up) { return upstream(up); }));
    r.key = k.key;
    r.key_known = true;
    const bool reuse = m_b.m_options.use_cache && !(m_b.m_options.regate && rule.judges());
    if (reuse) {
      MB_ASSIGN(bool hit, reuse_cached(i));
      if (hit) return succeeded(i, std::move(k.record));
    }
    r.why = m_b.m_explain->explain(step.slot, k.record);
    if (!m_execute) {
      r.state = StepState::kStale;
      for (const auto& w : r.why) m_b.m_reporter.report({EventKind::kExplain, Level::kInfo, step.label, w, {}});
      return false;  // dependents cannot know their keys: they are stale too
    }
    MB_TRY(m_preflight.ensure());
    // One process per key at a time; whoever waited reuses.
    auto lock = m_b.m_cache->lock_step(k.key);
    if (!lock.ok()) return explain_refusal(*m_b.m_cache, lock.error());
    if (reuse) {
      MB_ASSIGN(bool hit, reuse_cached(i));
      if (hit) return succeeded(i, std::move(k.record));
    }
    MB_TRY(execute(i, rule, k));
    return succeeded(i, std::move(k.record));
  }

  // Phase 3: an action-cache hit fills the result. A corrupt entry is a miss
  // (the cache reports it), never an error.
  Result<bool> reuse_cached(int i) {
    StepResult& r = m_report.steps[static_cast<size_t>(i)];
    MB_ASSIGN(auto entry, m_b.m_cache->lookup(r.key));
    if (!entry) return false;
    fs::path view = m_b.m_cache->view_dir(entry->output_digest);
    if (m_execute) {
      MB_ASSIGN(view, m_b.m_cache->view(*entry));
    }
    take_entry(i, std::move(*entry), std::move(view));
    r.state = StepState::kCached;
    m_b.m_reporter.report({EventKind::kStepCached, Level::kDebug, m_plan.steps[i].label, "up to date", {}});
    return true;
  }

  // Phase 5: the rule runs in staging and its output is committed.
  Status execute(int i, const Rule& rule, const KeyedStep& k) {
    const Step& step = m_plan.steps[static_cast<size_t>(i)];
    StepResult& r = m_report.steps[static_cast<size_t>(i)];
    for (const auto& w : r.why) m_b.m_reporter.report({EventKind::kExplain, Level::kDebug, step.label, w, {}});
    m_b.m_reporter.report({EventKind::kStepStarted, Level::kInfo, step.label, "", {{"kind", step.kind}}});
    const auto start = std::chrono::steady_clock::now();
    StepRun run{
        rule, step, k.inputs, k.key, m_recipe.dir, resolve_threads(m_b.m_options.threads_per_step), &interrupt::flag()};
    auto entry = execute_in_staging(*m_b.m_cache, m_b.m_fs, m_b.m_reporter, run);
    if (!entry.ok()) {
      if (entry.error().code == Errc::kIo) return explain_refusal(*m_b.m_cache, entry.error());
      return entry.error();
    }
    MB_ASSIGN(fs::path view, m_b.m_cache->view(*entry));
    take_entry(i, std::move(*entry), std::move(view));
    r.seconds = seconds_since(start);
    r.state = StepState::kBuilt;
    m_b.m_reporter.report({EventKind::kStepFinished,
                           Level::kInfo,
                           step.label,
                           fmt::format("built in {:.2f}s", r.seconds),
                           {{"seconds", r.seconds}, {"output", r.output_digest.hex()}}});
    return {};
  }

  void take_entry(int i, ActionEntry entry, fs::path view) {
    StepResult& r = m_report.steps[static_cast<size_t>(i)];
    r.output_digest = entry.output_digest;
    r.report = entry.report;
    r.outputs.clear();
    for (const auto& o : entry.outputs) r.outputs.emplace_back(o.path, o.digest);
    r.view = std::move(view);
    m_entries[static_cast<size_t>(i)] = std::move(entry);
  }

  // Phase 6 after any success, and the explain log's record of what the
  // step was built from.
  bool succeeded(int i, ExplainRecord record) {
    const Step& step = m_plan.steps[static_cast<size_t>(i)];
    if (m_execute) {
      for (size_t k = 0; k < step.inputs.size(); ++k)
        if (step.inputs[k].is_source()) record.inputs[k].files = m_sources.files(step.inputs[k].source);
      m_b.m_explain->record(step.slot, std::move(record));
    }
    m_checks.after_step(i, m_report.steps[static_cast<size_t>(i)].report);
    return true;
  }

  bool fail(int i, const Error& e) {
    StepResult& r = m_report.steps[static_cast<size_t>(i)];
    r.state = StepState::kFailed;
    r.error = e.to_string();
    r.error_code = e.code;
    if (m_execute && interrupt::requested()) {
      // Whatever the step said (a killed command, a vanished server), it
      // was stopped.
      m_b.m_reporter.debug(fmt::format("[{}] {}", m_plan.steps[i].label, r.error));
      r.error = fmt::format("interrupted by {}", interrupt::signal_name(interrupt::signal_number()));
      r.error_code = Errc::kCancelled;
    }
    m_b.m_reporter.report({EventKind::kStepFailed, Level::kError, m_plan.steps[i].label, r.error, {}});
    return false;
  }

  UpstreamOutput upstream(int step) const {
    const StepResult& up = m_report.steps[static_cast<size_t>(step)];
    return {up.view, up.output_digest, m_plan.steps[static_cast<size_t>(step)].label};
  }

  // Phases 7 and 8 for one requested target.
  Status finish_target(const std::string& name) {
    const TargetPlan& tp = m_plan.targets.at(name);
    TargetResult t;
    t.name = name;
    t.failures = m_checks.failures_of(name);
    const bool bad_verdict = !t.failures.empty();
    if (bad_verdict) t.failure_code = Errc::kGateFailed;
    std::optional<InputRef> artifact = tp.artifact;
    std::set<int> ignore_skips = search_results(tp, t, artifact);
    t.artifact = artifact;
    bool any_built = false, any_stale = false;
    Errc step_error = Errc::kStepFailed;
    for (int s : m_plan.steps_for(name)) {
      const StepResult& r = m_report.steps[static_cast<size_t>(s)];
      const bool skipped = r.state == StepState::kStale || r.state == StepState::kSkipped;
      if (tp.candidates.empty() && (!ignore_skips.count(s) || !skipped)) t.steps.push_back(s);
      if (r.state == StepState::kFailed) {
        t.failures.push_back(fmt::format("step '{}' failed: {}", m_plan.steps[s].label, r.error));
        step_error = r.error_code;
        t.failure_code = exit_code_for(r.error_code) == 2 ? r.error_code : Errc::kStepFailed;
      }
      any_built |= r.state == StepState::kBuilt;
      if (!ignore_skips.count(s)) any_stale |= r.state == StepState::kStale || r.state == StepState::kSkipped;
    }
    if (m_report.interrupted_by != 0 && !bad_verdict && (!t.failures.empty() || any_stale)) {
      // Stopped before it was complete: says nothing about build/TARGET.
      t.state = TargetState::kFailed;
      t.failure_code = Errc::kCancelled;
      t.failures = {fmt::format("not built: interrupted by {}", interrupt::signal_name(m_report.interrupted_by))};
    } else if (!t.failures.empty()) {
      t.state = TargetState::kFailed;
      if (m_execute) m_outputs.remove_if_stale(name, staleness(tp, artifact, bad_verdict, step_error));
    } else if (any_stale && m_execute) {
      t.state = TargetState::kFailed;
      t.failures.push_back("not built: the build stopped after an earlier failure (use -k to keep going)");
    } else if (any_stale) {
      t.state = TargetState::kStale;
    } else {
      t.state = any_built ? TargetState::kBuilt : TargetState::kUpToDate;
      if (artifact) MB_TRY(place(tp, *artifact, t));
    }
    m_report.targets.push_back(std::move(t));
    return {};
  }

  // A searching target's candidates: fills t.candidates and t.winner, sets
  // the artifact to the winner's, and returns the steps whose being skipped
  // does not mean "not built" (rejected candidates' and those after the one
  // that decides the search).
  std::set<int> search_results(const TargetPlan& tp, TargetResult& t, std::optional<InputRef>& artifact) const {
    std::set<int> ignore;
    if (tp.candidates.empty()) return ignore;
    const auto outcomes = m_checks.candidates_of(tp.name);
    const auto& sets = m_checks.step_sets(tp.name);
    t.winner = m_checks.winner(tp.name);
    if (t.winner >= 0) artifact = tp.candidates[static_cast<size_t>(t.winner)].artifact;
    bool deciding_seen = false;
    t.steps.assign(sets.base.begin(), sets.base.end());
    for (size_t k = 0; k < tp.candidates.size(); ++k) {
      const auto& out = outcomes[k];
      using V = TargetChecks::Verdict;
      // Past the candidate that decides, nothing is part of this search, even
      // if another target happened to build it: the report and the lock must
      // not depend on what else was requested.
      const bool beyond = deciding_seen;
      t.candidates.push_back({tp.candidates[k].name,
                              beyond                        ? "untried"
                              : out.verdict == V::kPassed   ? "passed"
                              : out.verdict == V::kRejected ? "rejected"
                                                            : "untried",
                              beyond ? std::vector<std::string>{} : out.reasons});
      // The first candidate not rejected decides: its steps count in full.
      const bool deciding = !deciding_seen && out.verdict != V::kRejected;
      deciding_seen |= deciding;
      if (!deciding) ignore.insert(sets.candidates[k].begin(), sets.candidates[k].end());
      // The target's steps, in candidate order (not plan order, which
      // depends on the other requested targets).
      if (!beyond)
        for (int s : sets.candidates[k]) {
          const StepState st = m_report.steps[static_cast<size_t>(s)].state;
          if (!ignore.count(s) || (st != StepState::kStale && st != StepState::kSkipped)) t.steps.push_back(s);
        }
    }
    return ignore;
  }

  // Whether a failed target's build/TARGET is known to be stale.
  TargetOutputs::Staleness staleness(const TargetPlan& tp, const std::optional<InputRef>& artifact, bool bad_verdict,
                                     Errc step_error) const {
    using S = TargetOutputs::Staleness;
    if (bad_verdict) return S::kBadVerdict;
    if (artifact && !artifact->is_source()) {
      const StepResult& a = m_report.steps[static_cast<size_t>(artifact->step)];
      if (a.state == StepState::kBuilt || a.state == StepState::kCached)
        return m_outputs.recorded_artifact_key(tp.name) == a.key ? S::kNotAboutTheArtifact : S::kOtherArtifact;
    }
    // The artifact was not made. Inputs the recipe names that fail to build
    // mean build/TARGET (made from other inputs) no longer matches it.
    switch (step_error) {
      case Errc::kInvalidInput:
      case Errc::kCorrupt:
      case Errc::kUnsupported:
      case Errc::kStepFailed:
        return S::kBadInput;
      default:
        return S::kNotAboutTheArtifact;
    }
  }

  // Makes build/TARGET show the artifact, and writes its report.
  Status place(const TargetPlan& tp, const InputRef& artifact, TargetResult& t) {
    t.path = m_outputs.artifact_path(tp.name);
    if (!m_execute || !m_b.m_options.materialize) return {};
    std::optional<Digest> artifact_key;
    if (artifact.is_source()) {
      MB_ASSIGN(auto src, m_sources.get(artifact.source));
      t.path = src.path;  // a source used as is: nothing to link
    } else {
      const int s = artifact.step;
      const auto& entry = m_entries[static_cast<size_t>(s)];
      if (!entry) return make_error(Errc::kInternal, tp.name, "the artifact step has no cache entry");
      MB_ASSIGN(auto done, m_outputs.place(tp.name, *entry));
      if (!done.noop) t.link_kind = link_kind_name(done.link_kind);
      artifact_key = m_report.steps[static_cast<size_t>(s)].key;
    }
    return m_outputs.write_report(tp.name, target_report(tp, t), artifact_key);
  }

  nlohmann::json target_report(const TargetPlan& tp, const TargetResult& t) const {
    nlohmann::json steps = nlohmann::json::array();
    for (int s : t.steps) {
      const StepResult& r = m_report.steps[static_cast<size_t>(s)];
      steps.push_back({{"step", m_plan.steps[s].label},
                       {"kind", m_plan.steps[s].kind},
                       {"key", r.key.hex()},
                       {"output", r.output_digest.hex()},
                       {"report", r.report}});
    }
    nlohmann::json report = {{"target", tp.name}, {"artifact", t.path.string()}, {"steps", steps}};
    if (!tp.candidates.empty()) report["search"] = search_report(tp, t);
    return report;
  }

  // Every candidate tried: its verdict, why it was rejected, its artifact's
  // bytes, and the value of each of its checks.
  nlohmann::json search_report(const TargetPlan& tp, const TargetResult& t) const {
    nlohmann::json out = nlohmann::json::array();
    for (size_t k = 0; k < tp.candidates.size(); ++k) {
      const Candidate& c = tp.candidates[k];
      nlohmann::json j = {{"candidate", c.name},
                          {"verdict", t.candidates[k].verdict},
                          {"reasons", t.candidates[k].reasons},
                          {"winner", static_cast<int>(k) == t.winner}};
      const auto* entry = c.artifact.is_source() ? nullptr : &m_entries[static_cast<size_t>(c.artifact.step)];
      if (entry && *entry) {
        const ActionEntry& e = **entry;
        uint64_t bytes = 0;
        for (const auto& f : e.outputs) bytes += f.size;
        j["bytes"] = bytes;
      }
      for (const Check& check : c.checks) {
        const auto& report = m_report.steps[static_cast<size_t>(check.step)].report;
        const nlohmann::json::json_pointer ptr(check.pointer);
        if (report.contains(ptr)) j["checks"][check.what] = report[ptr];
      }
      out.push_back(std::move(j));
    }
    return out;
  }

  Builder& m_b;
  const Recipe& m_recipe;
  const Plan& m_plan;
  const bool m_execute;  // run steps (false: evaluate, dry run)
  BuildReport m_report;
  SourceDigests m_sources;
  Preflight m_preflight;
  TargetChecks m_checks;
  TargetOutputs m_outputs;
  std::vector<std::optional<ActionEntry>> m_entries;  // each written by its own step only
};

Builder::Builder(FileSystem& fs, Reporter& reporter, const Registry& rules, BuildOptions options)
    : m_fs(fs), m_reporter(reporter), m_rules(rules), m_options(std::move(options)) {}

Builder::~Builder() = default;

Status Builder::open() {
  if (m_cache) return {};
  m_cache = std::make_unique<Cache>(m_fs, m_options.cache_dir, m_reporter);
  MB_TRY(m_cache->init());
  m_cache->set_fallback(m_options.fallback);
  MB_TRY(m_fs.create_dirs(m_options.state_dir));
  m_explain = std::make_unique<ExplainLog>(m_fs, m_options.state_dir / "explain.json", m_reporter);
  m_explain->load();
  return {};
}

Cache& Builder::cache() { return *m_cache; }
FileDigestCache& Builder::file_digests() { return m_cache->file_digests(); }

Result<BuildReport> Builder::build(const Recipe& recipe, const Plan& plan) {
  MB_TRY(open());
  if (m_options.dry_run) return Run(*this, recipe, plan, true).go();
  if (uint64_t n = sweep_temporaries(*m_cache, m_options.build_dir, SweepOwner::kDead); n > 0)
    m_reporter.debug(fmt::format("removed {} leftovers of builds that died", n));
  // A second signal exits at once (base/interrupt.h); what this process was
  // writing goes first. Unset again before this Builder can go away.
  interrupt::set_last_resort_cleanup(
      [this] { (void)sweep_temporaries(*m_cache, m_options.build_dir, SweepOwner::kSelf); });
  auto report = Run(*this, recipe, plan, true).go();
  interrupt::set_last_resort_cleanup(nullptr);
  return report;
}

Result<BuildReport> Builder::evaluate(const Recipe& recipe, const Plan& plan) {
  MB_TRY(open());
  return Run(*this, recipe, plan, false).go();
}

}  // namespace mb
