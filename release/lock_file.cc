#include "release/lock_file.h"

#include <algorithm>

#include "cache/cache.h"
#include "release/target_record.h"

namespace mb {

fs::path lock_file_path(const fs::path& recipe_dir) { return recipe_dir / "modelbuild.lock"; }

std::string lock_file_text(const nlohmann::json& lock) { return lock.dump(2) + "\n"; }

Result<LockFileText> read_lock_file(const FileSystem& fs, const fs::path& path) {
  LockFileText out;
  auto old = fs.read_file(path);
  if (!old.ok()) {
    if (old.error().code == Errc::kNotFound) return out;
    return old.error();
  }
  out.text = *old;
  auto parsed = nlohmann::json::parse(out.text, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object() || !parsed.contains("format") ||
      !parsed["format"].is_number_integer() || !parsed.contains("targets") || !parsed["targets"].is_object())
    return make_error(Errc::kCorrupt, path.string(),
                      "not a valid lock file (fix or delete it; it is rebuilt from the next build)");
  if (parsed["format"].get<int>() > kLockFormat)
    return make_error(Errc::kUnsupported, path.string(),
                      "lock file format {} is newer than this modelbuild understands ({})", parsed["format"].get<int>(),
                      kLockFormat);
  out.targets = parsed["targets"];
  return out;
}

Result<bool> update_lock_file(FileSystem& fs, const fs::path& path, const nlohmann::json& records,
                              const std::vector<std::string>& recipe_targets) {
  MB_ASSIGN(LockFileText old, read_lock_file(fs, path));
  const std::string& old_text = old.text;
  nlohmann::json lock = {{"format", kLockFormat}, {"targets", old.targets}};
  nlohmann::json& targets = lock["targets"];
  for (const auto& [name, record] : records.items()) targets[name] = record;
  for (auto it = targets.begin(); it != targets.end();) {
    if (std::find(recipe_targets.begin(), recipe_targets.end(), it.key()) == recipe_targets.end())
      it = targets.erase(it);
    else
      ++it;
  }
  std::string text = lock_file_text(lock);
  if (text == old_text) return false;
  MB_TRY(write_file_atomic(fs, path, text));
  return true;
}

Result<bool> write_lock_after_build(Builder& builder, const Recipe& recipe, const Plan& plan, const BuildReport& report,
                                    const std::map<std::string, ResolvedGit>& git) {
  nlohmann::json records = nlohmann::json::object();
  for (const auto& name : plan.requested) {
    bool steps_ok = true;
    // A search's untried candidates never run: only the winner's steps count.
    const TargetResult* result = find_target_result(report, name);
    for (int s : result && !result->steps.empty() ? result->steps : plan.steps_for(name)) {
      StepState st = report.steps[s].state;
      steps_ok = steps_ok && (st == StepState::kBuilt || st == StepState::kCached);
    }
    // A step that failed or never ran leaves nothing new to record.
    if (!steps_ok) continue;
    MB_ASSIGN(records[name], describe_target(builder, recipe, plan, report, name, git));
  }
  std::vector<std::string> names;
  for (const auto& t : recipe.targets) names.push_back(t.name);
  return update_lock_file(builder.cache().fs(), lock_file_path(recipe.dir), records, names);
}

}  // namespace mb
