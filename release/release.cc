#include "release/release.h"

#include "graph/plan.h"
#include "release/git_source.h"
#include "release/lock_file.h"
#include "release/manifest.h"
#include "release/signing.h"
#include "release/target_record.h"
#include "rules/gate.h"

namespace mb {
namespace {

Status check_destination(FileSystem& fs, const fs::path& dir) {
  auto st = fs.stat(dir);
  if (!st.ok()) return {};
  if (!st->is_dir) return make_error(Errc::kInvalidInput, dir.string(), "exists and is not a directory");
  MB_ASSIGN(auto names, fs.list_dir(dir));
  if (!names.empty())
    return make_error(Errc::kInvalidInput, dir.string(), "is not empty; releases go to a new or empty directory");
  return {};
}

// The gate report and metrics of the manifest.
void add_reports(nlohmann::json& m, const Plan& plan, const BuildReport& report, const std::string& target,
                 const GateVerdict& v) {
  m["gate"] = {{"accuracy", v.accuracy}, {"min_accuracy", v.min_accuracy}, {"passed", v.passed}, {"report", v.report}};
  nlohmann::json metrics = nlohmann::json::object();
  const int gate_step = gate_step_of(plan, report, target);
  const TargetResult* result = find_target_result(report, target);
  for (int s : result ? result->steps : plan.steps_for(target)) {
    if (s == gate_step || report.steps[s].report.empty()) continue;
    metrics[plan.steps[s].label] = report.steps[s].report;
  }
  m["metrics"] = std::move(metrics);
}

}  // namespace

Result<ReleaseSummary> release_target(FileSystem& fs, Reporter& reporter, const Registry& rules, const Recipe& recipe,
                                      const BuildOptions& build, const std::string& target,
                                      const ReleaseOptions& options) {
  ReleaseSummary summary;
  MB_ASSIGN(Plan plan, make_plan(recipe, rules, {target}));
  const TargetPlan& tp = plan.targets.at(target);
  if (tp.marked(kGateMark) < 0 && tp.candidates.empty())
    return make_error(Errc::kInvalidInput, target,
                      "target '{}' has no gate; only gated targets can be released (add gate: {{suite: …}})", target);
  if (options.sign_key) {
    // Fail on a bad key now, not after a long build.
    MB_TRY(sign_message(fs, *options.sign_key, "probe").status());
  }
  const fs::path dest = fs::absolute(options.to);
  MB_TRY(check_destination(fs, dest));
  MB_ASSIGN(summary.provenance, read_provenance(recipe.dir));
  const Provenance& prov = summary.provenance;
  if (prov.dirty && !options.allow_dirty) {
    std::string paths;
    for (size_t i = 0; i < prov.dirty_paths.size() && i < 5; ++i) paths += "\n  " + prov.dirty_paths[i];
    if (prov.dirty_paths.size() > 5) paths += fmt::format("\n  … and {} more", prov.dirty_paths.size() - 5);
    return make_error(Errc::kInvalidInput, prov.repository.string(),
                      "the working tree has uncommitted changes; commit them or pass --allow-dirty:{}", paths);
  }

  Builder builder(fs, reporter, rules, build);
  MB_ASSIGN(auto git, install_git_sources(fs, recipe, plan, builder));
  MB_ASSIGN(BuildReport report, builder.build(recipe, plan));
  MB_TRY(write_lock_after_build(builder, recipe, plan, report, git).status());

  GateVerdict verdict = gate_verdict(plan, report, target);
  const TargetResult& tr = report.targets.front();
  if (tr.state == TargetState::kFailed) {
    std::string why = tr.failures.empty() ? "it failed" : tr.failures.front();
    Errc code = tr.failure_code;
    if (verdict.ran && !verdict.passed) code = Errc::kGateFailed;
    return make_error(code, target, "not released: {}", why);
  }
  if (!verdict.ran || !verdict.passed)
    return make_error(Errc::kGateFailed, target, "not released: its gate has not passed");
  summary.accuracy = verdict.accuracy;

  MB_ASSIGN(nlohmann::json record, describe_target(builder, recipe, plan, report, target, git));
  MB_ASSIGN(ArtifactFiles artifact, artifact_files(builder, recipe, plan, report, target, git));
  MB_ASSIGN(std::string recipe_bytes, fs.read_file(recipe.file));
  nlohmann::json m = {
      {"format_version", kManifestFormat},
      {"tool", {{"name", "modelbuild"}, {"version", MODELBUILD_VERSION}}},
      {"target", target},
      {"recipe",
       {{"file", recipe.file.filename().string()}, {"digest", digest_string_of(digest_string(recipe_bytes))}}},
      {"provenance", prov.to_json()},
      {"inputs", record["inputs"]},
      {"steps", record["steps"]}};
  add_reports(m, plan, report, target, verdict);

  // Stage everything beside DEST, then rename: all or nothing.
  MB_TRY(fs.create_dirs(dest.parent_path()));
  const fs::path stage = temp_path_for(dest);
  auto staged = [&]() -> Status {
    nlohmann::json files = nlohmann::json::object();
    for (const auto& [rel, f] : artifact.files) {
      const std::string out_rel = target + "/" + rel;
      const fs::path out = stage / out_rel;
      MB_TRY(fs.create_dirs(out.parent_path()));
      // Cache blobs are immutable, so a link is safe; a source is the user's
      // file and may change later, so it is copied.
      if (artifact.in_cache)
        MB_TRY(link_or_copy(fs, artifact.dir / rel, out).status());
      else if (!fs.reflink(artifact.dir / rel, out).ok())
        MB_TRY(fs.copy_file(artifact.dir / rel, out));
      files[out_rel] = {{"digest", digest_string_of(f.first)}, {"size", f.second}};
      summary.files++;
      summary.bytes += f.second;
    }
    m["files"] = std::move(files);
    const std::string text = manifest_text(m);
    MB_TRY(write_file_atomic(fs, stage / kManifestName, text));
    if (options.sign_key) {
      MB_ASSIGN(std::string sig, sign_message(fs, *options.sign_key, text));
      MB_TRY(write_file_atomic(fs, stage / kSignatureName, sig));
      summary.is_signed = true;
    }
    if (fs.stat(dest).ok()) MB_TRY(fs.remove(dest));  // checked empty above
    MB_TRY(fs.rename(stage, dest));
    return fs.sync_dir(dest.parent_path());
  }();
  if (!staged.ok()) {
    (void)fs.remove_all(stage);
    return staged.error();
  }
  summary.dir = dest;
  return summary;
}

}  // namespace mb
