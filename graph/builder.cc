#include "graph/builder.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "cache/action_key.h"
#include "cache/cache.h"
#include "cache/file_digests.h"
#include "cache/materialize.h"
#include "graph/explain.h"
#include "graph/scheduler.h"

namespace mb {
namespace {

int cores() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// A check against a report: the value at `pointer` must be a number >= min.
// Missing metrics fail closed.
std::optional<std::string> failed_check(const Check& c, const nlohmann::json& report, const std::string& label) {
  nlohmann::json::json_pointer ptr(c.pointer);
  if (!report.contains(ptr) || !report[ptr].is_number())
    return fmt::format("{}: the step '{}' reported no {} (fails closed)", c.what, label, c.what);
  double v = report[ptr].get<double>();
  if (v + 1e-12 < c.min) {
    if (c.percent)
      return fmt::format("{} {:.4g}% is below the required {:.4g}% (step '{}')", c.what, 100 * v, 100 * c.min, label);
    return fmt::format("{} {:.4g} is below the required {:.4g} (step '{}')", c.what, v, c.min, label);
  }
  return std::nullopt;
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

bool BuildReport::ok() const {
  for (const auto& t : targets)
    if (t.state == TargetState::kFailed) return false;
  return true;
}

int BuildReport::exit_code() const {
  int code = 0;
  for (const auto& t : targets)
    if (t.state == TargetState::kFailed) code = std::max(code, exit_code_for(t.failure_code));
  return code;
}

// One build or evaluation of a plan. Owns the per-step results; worker
// threads write only their own step's result, and shared maps are guarded.
class Builder::Run {
 public:
  Run(Builder& b, const Recipe& recipe, const Plan& plan, bool execute)
      : m_b(b), m_recipe(recipe), m_plan(plan), m_execute(execute) {
    m_report.steps.resize(plan.steps.size());
    // Which requested targets need each step.
    m_users.resize(plan.steps.size());
    for (const auto& name : plan.requested)
      for (int s : plan.steps_for(name)) m_users[s].push_back(name);
  }

  Result<BuildReport> go() {
    hash_sources();
    std::vector<std::vector<int>> deps;
    for (const auto& s : m_plan.steps) deps.push_back(s.deps());
    int jobs = m_b.m_options.jobs > 0 ? m_b.m_options.jobs : cores();
    Scheduler scheduler(m_execute ? jobs : 1, m_b.m_options.keep_going || !m_execute || m_b.m_options.dry_run);
    auto states = scheduler.run(
        deps, [&](int i) { return run_step(i); }, [&](int i) { return wanted(i); });
    for (size_t i = 0; i < states.size(); ++i) {
      StepResult& r = m_report.steps[i];
      if (states[i] == NodeState::kSkipped && r.state == StepState::kPending) {
        r.state = m_execute ? StepState::kSkipped : StepState::kStale;
        if (!m_execute) r.why.push_back("an input is stale");
      }
    }
    MB_TRY(finish_targets());
    (void)m_b.m_cache->save_state();
    (void)m_b.m_explain->save();
    return std::move(m_report);
  }

 private:
  // A step runs only while some requested target that needs it is alive.
  bool wanted(int i) {
    std::lock_guard<std::mutex> lock(m_mu);
    for (const auto& t : m_users[i])
      if (!m_failed_targets.count(t)) return true;
    return false;
  }

  // Hashes every source the plan reads, several at once, before any step
  // asks: a step with eight single-file inputs would otherwise hash them one
  // after another. Errors are left for the step that reads the source to
  // report in context (source() memoizes only successes).
  void hash_sources() {
    std::vector<std::string> names;
    for (const auto& step : m_plan.steps)
      for (const auto& in : step.inputs)
        if (in.is_source() && std::find(names.begin(), names.end(), in.source) == names.end())
          names.push_back(in.source);
    if (names.size() < 2) return;  // one source hashes its files in parallel itself
    const int total = m_b.m_options.threads_per_step > 0 ? m_b.m_options.threads_per_step : cores();
    const size_t workers = std::min<size_t>(static_cast<size_t>(total), names.size());
    const int per_source = std::max(1, total / static_cast<int>(workers));
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t k = next.fetch_add(1); k < names.size(); k = next.fetch_add(1)) (void)source(names[k], per_source);
    };
    std::vector<std::thread> pool;
    for (size_t t = 1; t < workers; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
  }

  // The digest of a source, memoized; the FileDigestCache makes repeated
  // builds stat-only.
  Result<std::pair<fs::path, Digest>> source(const std::string& name, int threads = 0) {
    {
      std::lock_guard<std::mutex> lock(m_mu);
      if (auto it = m_sources.find(name); it != m_sources.end()) return it->second;
    }
    const SourceDecl* src = m_recipe.find_source(name);
    fs::path path = src->path;
    if (src->git) {
      if (!m_b.git_resolver)
        return make_error(Errc::kUnsupported, src->loc.str(), "git-pinned sources are not supported here");
      MB_ASSIGN(path, m_b.git_resolver(*src));
    }
    if (threads < 1) threads = m_b.m_options.threads_per_step > 0 ? m_b.m_options.threads_per_step : cores();
    MB_ASSIGN(Digest d, m_b.m_cache->file_digests().digest_of_tree(path, threads));
    std::lock_guard<std::mutex> lock(m_mu);
    m_sources[name] = {path, d};
    return std::make_pair(path, d);
  }

  // Per-file digests of a source directory, for explanations.
  std::map<std::string, Digest> source_files(const fs::path& root) {
    std::map<std::string, Digest> files;
    auto st = m_b.m_fs.stat(root);
    if (!st.ok()) return files;
    if (!st->is_dir) {
      if (auto d = m_b.m_cache->file_digests().digest_of(root); d.ok()) files[root.filename().string()] = *d;
      return files;
    }
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::follow_directory_symlink, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (!it->is_regular_file(ec)) continue;
      if (auto d = m_b.m_cache->file_digests().digest_of(it->path()); d.ok())
        files[fs::relative(it->path(), root).generic_string()] = *d;
    }
    return files;
  }

  bool fail(int i, std::string message) {
    StepResult& r = m_report.steps[i];
    r.state = StepState::kFailed;
    r.error = std::move(message);
    m_b.m_reporter.report({EventKind::kStepFailed, Level::kError, m_plan.steps[i].label, r.error, {}});
    return false;
  }

  void take_entry(StepResult& r, const ActionEntry& entry) {
    r.output_digest = entry.output_digest;
    r.report = entry.report;
    r.outputs.clear();
    for (const auto& o : entry.outputs) r.outputs.emplace_back(o.path, o.digest);
  }

  // Links a step's output files into a per-output directory downstream rules
  // can read, and that targets are materialized from.
  Status ensure_view(StepResult& r, const ActionEntry& entry) {
    r.view = m_b.m_options.cache_dir / "views" / entry.output_digest.hex();
    // Another process may be linking the same view right now.
    MB_ASSIGN(auto lock,
              m_b.m_fs.lock(m_b.m_options.cache_dir / "locks" / ("view-" + entry.output_digest.hex() + ".lock")));
    auto done = m_b.m_cache->materialize(entry, r.view);
    if (!done.ok()) return done.error();
    return {};
  }

  bool run_step(int i) {
    const Step& step = m_plan.steps[i];
    StepResult& r = m_report.steps[i];
    const Rule* rule = m_b.m_rules.find(step.kind);
    if (!rule) return fail(i, fmt::format("no rule for step kind '{}'", step.kind));

    // Resolve inputs: sources by their content digest, step inputs by the
    // upstream step's output digest (early cutoff).
    std::vector<StepInput> inputs;
    ExplainRecord rec;
    rec.kind = step.kind;
    rec.algorithm_version = rule->algorithm_version();
    rec.params = step.params;
    ActionKeySpec spec{step.kind, rule->algorithm_version(), step.params, {}};
    for (const auto& in : step.inputs) {
      ExplainInput ei;
      ei.role = in.role;
      if (in.is_source()) {
        auto src = source(in.source);
        if (!src.ok()) return fail(i, src.error().to_string());
        inputs.push_back({in.role, src->first, src->second});
        ei.origin = "source " + in.source;
        ei.digest = src->second;
      } else {
        const StepResult& up = m_report.steps[in.step];
        inputs.push_back({in.role, up.view, up.output_digest});
        ei.origin = "step " + m_plan.steps[in.step].label;
        ei.digest = up.output_digest;
      }
      spec.inputs.push_back({in.role, ei.digest});
      rec.inputs.push_back(std::move(ei));
    }
    r.key = action_key(spec);
    r.key_known = true;
    rec.key = r.key;

    const bool reuse = m_b.m_options.use_cache && !(m_b.m_options.regate && step.kind == "gate");
    if (reuse) {
      auto hit = lookup(i);
      if (!hit.ok()) return fail(i, hit.error().to_string());
      if (*hit) {
        record_explain(step, rec);
        return after_success(i);
      }
    }
    r.why = m_b.m_explain->explain(step.slot, rec);
    if (!m_execute || m_b.m_options.dry_run) {
      r.state = StepState::kStale;
      for (const auto& w : r.why) m_b.m_reporter.report({EventKind::kExplain, Level::kInfo, step.label, w, {}});
      return false;  // dependents cannot know their keys: they are stale too
    }

    // Build it: one process per key at a time; whoever waited reuses.
    auto lock = m_b.m_cache->lock_step(r.key);
    if (!lock.ok()) return fail(i, lock.error().to_string());
    if (reuse) {
      auto hit = lookup(i);
      if (!hit.ok()) return fail(i, hit.error().to_string());
      if (*hit) {
        record_explain(step, rec);
        return after_success(i);
      }
    }
    for (const auto& w : r.why) m_b.m_reporter.report({EventKind::kExplain, Level::kDebug, step.label, w, {}});
    m_b.m_reporter.report({EventKind::kStepStarted, Level::kInfo, step.label, "", {{"kind", step.kind}}});
    auto start = std::chrono::steady_clock::now();
    auto staging = m_b.m_cache->begin(r.key);
    if (!staging.ok()) return fail(i, staging.error().to_string());
    int threads = m_b.m_options.threads_per_step > 0 ? m_b.m_options.threads_per_step : cores();
    StepContext ctx{m_b.m_fs,       m_b.m_reporter, step.label, step.params, inputs,
                    staging->dir(), m_recipe.dir,   threads,    nullptr};
    Status st = rule->run(ctx);
    if (!st.ok()) {
      (void)m_b.m_cache->abandon(*staging);
      {
        std::lock_guard<std::mutex> guard(m_mu);
        m_step_errors[i] = st.error().code;
      }
      return fail(i, st.error().to_string());
    }
    auto entry = m_b.m_cache->commit(*staging, step.kind, ctx.report);
    if (!entry.ok()) return fail(i, entry.error().to_string());
    take_entry(r, *entry);
    if (auto v = ensure_view(r, *entry); !v.ok()) return fail(i, v.error().to_string());
    r.seconds = seconds_since(start);
    r.state = StepState::kBuilt;
    record_explain(step, rec);
    m_b.m_reporter.report({EventKind::kStepFinished,
                           Level::kInfo,
                           step.label,
                           fmt::format("built in {:.2f}s", r.seconds),
                           {{"seconds", r.seconds}, {"output", r.output_digest.hex()}}});
    return after_success(i);
  }

  // Action-cache lookup; on a hit fills the result. A corrupt entry is a miss
  // (the cache reports it), never an error.
  Result<bool> lookup(int i) {
    StepResult& r = m_report.steps[i];
    MB_ASSIGN(auto entry, m_b.m_cache->actions().lookup(r.key));
    if (!entry) return false;
    take_entry(r, *entry);
    if (m_execute && !m_b.m_options.dry_run) {
      if (auto v = ensure_view(r, *entry); !v.ok()) return v.error();
    } else {
      r.view = m_b.m_options.cache_dir / "views" / entry->output_digest.hex();
    }
    r.state = StepState::kCached;
    m_b.m_reporter.report({EventKind::kStepCached, Level::kDebug, m_plan.steps[i].label, "up to date", {}});
    return true;
  }

  void record_explain(const Step& step, ExplainRecord rec) {
    if (!m_execute) return;
    for (size_t k = 0; k < step.inputs.size(); ++k)
      if (step.inputs[k].is_source()) rec.inputs[k].files = source_files(m_sources.at(step.inputs[k].source).first);
    m_b.m_explain->record(step.slot, std::move(rec));
  }

  // Checks of every target that reads this step's report. A failing check
  // fails the target now, so e.g. its gate never runs on an artifact whose
  // adapter delta was rounded away.
  bool after_success(int i) {
    std::lock_guard<std::mutex> lock(m_mu);
    for (const auto& [name, tp] : m_plan.targets) {
      for (const auto& c : tp.checks) {
        if (c.step != i) continue;
        if (auto why = failed_check(c, m_report.steps[i].report, m_plan.steps[i].label)) {
          if (m_check_failures[name].insert(*why).second)
            m_b.m_reporter.report({EventKind::kMessage, Level::kError, name, *why, {}});
          fail_target_and_users(name);
        }
      }
    }
    return true;
  }

  // REQUIRES: m_mu held.
  void fail_target_and_users(const std::string& name) {
    m_failed_targets.insert(name);
    for (const auto& req : m_plan.requested) {
      auto closure = m_plan.closure(req);
      if (std::find(closure.begin(), closure.end(), name) != closure.end()) m_failed_targets.insert(req);
    }
  }

  Status finish_targets() {
    for (const auto& name : m_plan.requested) {
      TargetResult t;
      t.name = name;
      const TargetPlan& tp = m_plan.targets.at(name);
      bool any_built = false, any_stale = false;
      for (const auto& dep : m_plan.closure(name))
        for (const auto& f : m_check_failures[dep]) {
          t.failures.push_back(dep == name ? f : fmt::format("{} (needed target '{}')", f, dep));
          t.failure_code = Errc::kGateFailed;
        }
      for (int s : m_plan.steps_for(name)) {
        const StepResult& r = m_report.steps[s];
        if (r.state == StepState::kFailed) {
          t.failures.push_back(fmt::format("step '{}' failed: {}", m_plan.steps[s].label, r.error));
          t.failure_code = Errc::kStepFailed;
          if (auto it = m_step_errors.find(s); it != m_step_errors.end() && exit_code_for(it->second) == 2)
            t.failure_code = it->second;
        }
        if (r.state == StepState::kBuilt) any_built = true;
        if (r.state == StepState::kStale || r.state == StepState::kSkipped) any_stale = true;
      }
      if (!t.failures.empty()) {
        t.state = TargetState::kFailed;
        if (m_execute && !m_b.m_options.dry_run) unmaterialize(name);
      } else if (any_stale) {
        if (m_execute && !m_b.m_options.dry_run) {
          t.state = TargetState::kFailed;
          t.failures.push_back("not built: the build stopped after an earlier failure (use -k to keep going)");
        } else {
          t.state = TargetState::kStale;
        }
      } else {
        t.state = any_built ? TargetState::kBuilt : TargetState::kUpToDate;
        if (tp.artifact) MB_TRY(place(tp, t));
      }
      m_report.targets.push_back(std::move(t));
    }
    return {};
  }

  // Makes build/TARGET show the artifact.
  Status place(const TargetPlan& tp, TargetResult& t) {
    const fs::path dest = m_b.m_options.build_dir / tp.name;
    if (!tp.artifact->is_source()) {
      const StepResult& r = m_report.steps[tp.artifact->step];
      if (!m_execute || m_b.m_options.dry_run || !m_b.m_options.materialize) {
        t.path = dest;
        return {};
      }
      MB_ASSIGN(auto entry, m_b.m_cache->actions().lookup(r.key));
      if (!entry) return make_error(Errc::kInternal, tp.name, "cache entry vanished while materializing");
      MB_TRY(m_b.m_fs.create_dirs(m_b.m_options.build_dir));
      // Two builds of one target must not swap build/TARGET under each other.
      MB_ASSIGN(auto lock, m_b.m_fs.lock(m_b.m_options.build_dir / ("." + tp.name + ".lock")));
      MB_ASSIGN(auto done, m_b.m_cache->materialize(*entry, dest));
      t.path = dest;
      if (!done.noop) t.link_kind = link_kind_name(done.link_kind);
    } else {
      MB_ASSIGN(auto src, source(tp.artifact->source));
      t.path = src.first;  // a source used as is: nothing to link
    }
    MB_TRY(write_target_report(tp, t));
    return {};
  }

  void unmaterialize(const std::string& name) {
    const fs::path dest = m_b.m_options.build_dir / name;
    if (m_b.m_fs.stat(dest).ok()) {
      m_b.m_reporter.warn(
          fmt::format("removed {}: it no longer matches the recipe and its target failed", dest.string()));
      (void)m_b.m_fs.remove_all(dest);
    }
  }

  // build/TARGET.report.json: every step report of the target (retention,
  // gate verdict…) next to the artifact, rewritten only when it changes.
  Status write_target_report(const TargetPlan& tp, const TargetResult& t) {
    if (!m_execute || m_b.m_options.dry_run) return {};
    nlohmann::json steps = nlohmann::json::array();
    for (int s : m_plan.steps_for(tp.name)) {
      const StepResult& r = m_report.steps[s];
      steps.push_back({{"step", m_plan.steps[s].label},
                       {"kind", m_plan.steps[s].kind},
                       {"key", r.key.hex()},
                       {"output", r.output_digest.hex()},
                       {"report", r.report}});
    }
    nlohmann::json j = {{"target", tp.name}, {"artifact", t.path.string()}, {"steps", steps}};
    const fs::path file = m_b.m_options.build_dir / (tp.name + ".report.json");
    std::string text = j.dump(2) + "\n";
    if (auto old = m_b.m_fs.read_file(file); old.ok() && *old == text) return {};
    // A target whose artifact is a source links nothing, so build/ may not exist yet.
    MB_TRY(m_b.m_fs.create_dirs(m_b.m_options.build_dir));
    return write_file_atomic(m_b.m_fs, file, text);
  }

  Builder& m_b;
  const Recipe& m_recipe;
  const Plan& m_plan;
  const bool m_execute;
  BuildReport m_report;
  std::vector<std::vector<std::string>> m_users;
  std::mutex m_mu;
  std::map<std::string, std::pair<fs::path, Digest>> m_sources;
  std::set<std::string> m_failed_targets;
  std::map<std::string, std::set<std::string>> m_check_failures;
  std::map<int, Errc> m_step_errors;
};

Builder::Builder(FileSystem& fs, Reporter& reporter, const RuleRegistry& rules, BuildOptions options)
    : m_fs(fs), m_reporter(reporter), m_rules(rules), m_options(std::move(options)) {}

Builder::~Builder() = default;

Status Builder::open() {
  if (m_cache) return {};
  m_cache = std::make_unique<Cache>(m_fs, m_options.cache_dir, m_reporter);
  MB_TRY(m_cache->init());
  MB_TRY(m_fs.create_dirs(m_options.state_dir));
  m_explain = std::make_unique<ExplainLog>(m_fs, m_options.state_dir / "explain.json", m_reporter);
  m_explain->load();
  return {};
}

Cache& Builder::cache() { return *m_cache; }
FileDigestCache& Builder::file_digests() { return m_cache->file_digests(); }

Result<BuildReport> Builder::build(const Recipe& recipe, const Plan& plan) {
  MB_TRY(open());
  return Run(*this, recipe, plan, true).go();
}

Result<BuildReport> Builder::evaluate(const Recipe& recipe, const Plan& plan) {
  MB_TRY(open());
  return Run(*this, recipe, plan, false).go();
}

}  // namespace mb
