#include "release/target_record.h"

#include <set>

#include "cache/cache.h"
#include "cache/file_digests.h"
#include "cache/tree_digest.h"
#include "rules/gate.h"

namespace mb {
namespace {

// Every source the target reads, itself or through the targets it needs.
std::set<std::string> sources_of(const Plan& plan, const std::string& target) {
  std::set<std::string> names;
  for (int s : plan.steps_for(target))
    for (const auto& in : plan.steps[s].inputs)
      if (in.is_source()) names.insert(in.source);
  for (const auto& t : plan.closure(target)) {
    const TargetPlan& tp = plan.targets.at(t);
    if (tp.artifact && tp.artifact->is_source()) names.insert(tp.artifact->source);
    for (const auto& in : tp.runtime_inputs)
      if (in.is_source()) names.insert(in.source);
  }
  return names;
}

fs::path source_path(const SourceDecl& src, const std::map<std::string, ResolvedGit>& git) {
  if (!src.git) return src.path;
  auto it = git.find(src.name);
  return it == git.end() ? fs::path() : it->second.path;
}

// Digest (as the builder computes it) and total size of a file or directory;
// a directory is walked once, for both.
Result<std::pair<Digest, uint64_t>> digest_and_size(Builder& builder, const fs::path& path) {
  MB_ASSIGN(FileStat st, builder.cache().fs().stat(path));
  if (!st.is_dir) {
    MB_ASSIGN(Digest d, builder.file_digests().digest_of(path));
    return std::make_pair(d, st.size);
  }
  MB_ASSIGN(auto entries, builder.file_digests().tree_entries(path, 0));
  uint64_t size = 0;
  for (const auto& e : entries) size += e.size;
  return std::make_pair(tree_digest(entries), size);
}

}  // namespace

std::string digest_string_of(const Digest& d) { return "sha256:" + d.hex(); }

int gate_step_of(const Plan& plan, const BuildReport& report, const std::string& target) {
  const TargetPlan& tp = plan.targets.at(target);
  if (tp.candidates.empty()) return tp.marked(kGateMark);
  const TargetResult* t = find_target_result(report, target);
  return t && t->winner >= 0 ? tp.candidates[static_cast<size_t>(t->winner)].marked(kGateMark) : -1;
}

GateVerdict gate_verdict(const Plan& plan, const BuildReport& report, const std::string& target) {
  GateVerdict v;
  const TargetPlan& tp = plan.targets.at(target);
  const int gate_step = gate_step_of(plan, report, target);
  if (gate_step < 0 && tp.candidates.empty()) return v;
  v.present = true;
  if (gate_step < 0) return v;  // a search that found nothing: not ran, not passed
  std::vector<Check> checks = tp.checks;
  for (const Candidate& c : tp.candidates) checks.insert(checks.end(), c.checks.begin(), c.checks.end());
  for (const auto& c : checks)
    if (c.step == gate_step && c.what == kAccuracy) v.min_accuracy = c.min;
  const StepResult& r = report.steps[gate_step];
  v.ran = r.state == StepState::kBuilt || r.state == StepState::kCached;
  if (!v.ran) return v;
  v.report = r.report;
  if (r.report.contains("accuracy") && r.report["accuracy"].is_number()) {
    v.accuracy = r.report["accuracy"].get<double>();
    v.passed = v.accuracy + 1e-12 >= v.min_accuracy;
  }
  return v;
}

Result<ArtifactFiles> artifact_files(Builder& builder, const Recipe& recipe, const Plan& plan,
                                     const BuildReport& report, const std::string& target,
                                     const std::map<std::string, ResolvedGit>& git) {
  const TargetResult* result = find_target_result(report, target);
  const std::optional<InputRef> artifact = result ? result->artifact : plan.targets.at(target).artifact;
  ArtifactFiles out;
  if (!artifact) return make_error(Errc::kInvalidInput, target, "target '{}' has no artifact", target);
  if (!artifact->is_source()) {
    const StepResult& r = report.steps[artifact->step];
    MB_ASSIGN(auto entry, builder.cache().actions().lookup(r.key));
    if (!entry) return make_error(Errc::kInternal, target, "the cache entry of target '{}' vanished", target);
    out.dir = r.view;
    for (const auto& f : entry->outputs) out.files[f.path] = {f.digest, f.size};
    return out;
  }
  const SourceDecl* src = recipe.find_source(artifact->source);
  out.in_cache = false;
  fs::path path = source_path(*src, git);
  MB_ASSIGN(FileStat st, builder.cache().fs().stat(path));
  if (!st.is_dir) {
    MB_ASSIGN(Digest d, builder.file_digests().digest_of(path));
    out.dir = path.parent_path();
    out.files[path.filename().string()] = {d, st.size};
    return out;
  }
  out.dir = path;
  MB_ASSIGN(auto entries, builder.file_digests().tree_entries(path, 0));
  for (const auto& e : entries) out.files[e.path] = {e.digest, e.size};
  return out;
}

Result<nlohmann::json> describe_target(Builder& builder, const Recipe& recipe, const Plan& plan,
                                       const BuildReport& report, const std::string& target,
                                       const std::map<std::string, ResolvedGit>& git) {
  nlohmann::json j;
  nlohmann::json inputs = nlohmann::json::object();
  for (const auto& name : sources_of(plan, target)) {
    const SourceDecl* src = recipe.find_source(name);
    MB_ASSIGN(auto ds, digest_and_size(builder, source_path(*src, git)));
    nlohmann::json in = {{"digest", digest_string_of(ds.first)}, {"size", ds.second}};
    if (src->git) {
      auto it = git.find(name);
      in["git"] = {{"repo", src->git->repo},
                   {"rev", src->git->rev},
                   {"path", src->git->path},
                   {"commit", it == git.end() ? "" : it->second.commit}};
    }
    inputs[name] = std::move(in);
  }
  j["inputs"] = std::move(inputs);

  bool all_ok = true;
  nlohmann::json steps = nlohmann::json::array();
  const TargetResult* result = find_target_result(report, target);
  for (int s : result ? result->steps : plan.steps_for(target)) {
    const StepResult& r = report.steps[s];
    bool ok = r.state == StepState::kBuilt || r.state == StepState::kCached;
    all_ok = all_ok && ok;
    // No step label: a shared step is labelled after whichever target the
    // plan met first, which depends on what was requested, and the lock
    // must not change when nothing did.
    steps.push_back({{"kind", plan.steps[s].kind},
                     {"key", r.key_known ? digest_string_of(r.key) : nullptr},
                     {"output", ok ? nlohmann::json(digest_string_of(r.output_digest)) : nlohmann::json(nullptr)}});
  }
  j["steps"] = std::move(steps);

  nlohmann::json outputs = nlohmann::json::object();
  // A search none of whose candidates passed ran every step it needed and
  // has no artifact: the lock records it as failed, with no outputs.
  const bool has_artifact = result ? result->artifact.has_value() : plan.targets.at(target).artifact.has_value();
  if (all_ok && has_artifact) {
    MB_ASSIGN(auto files, artifact_files(builder, recipe, plan, report, target, git));
    for (const auto& [path, f] : files.files)
      outputs[path] = {{"digest", digest_string_of(f.first)}, {"size", f.second}};
  }
  j["outputs"] = std::move(outputs);

  GateVerdict v = gate_verdict(plan, report, target);
  if (!v.present)
    j["gate"] = nullptr;
  else if (!v.ran)
    j["gate"] = {{"ran", false}, {"min_accuracy", v.min_accuracy}, {"passed", false}};
  else
    j["gate"] = {{"accuracy", v.accuracy}, {"min_accuracy", v.min_accuracy}, {"passed", v.passed}};

  if (result && !result->candidates.empty()) {
    // A search: which candidate won, and what each one tried said.
    nlohmann::json candidates = nlohmann::json::array();
    for (const CandidateResult& c : result->candidates)
      candidates.push_back({{"candidate", c.name}, {"verdict", c.verdict}, {"reasons", c.reasons}});
    j["search"] = {{"winner", result->winner >= 0 ? nlohmann::json(result->candidates[result->winner].name)
                                                  : nlohmann::json(nullptr)},
                   {"candidates", candidates}};
  }
  j["state"] = result && result->state == TargetState::kFailed ? "failed" : "ok";
  return j;
}

}  // namespace mb
