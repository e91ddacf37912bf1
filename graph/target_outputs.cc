#include "graph/target_outputs.h"

#include "cache/cache.h"

namespace mb {

TargetOutputs::TargetOutputs(FileSystem& fs, Cache& cache, Reporter& reporter, fs::path build_dir)
    : m_fs(fs), m_cache(cache), m_reporter(reporter), m_build_dir(std::move(build_dir)) {}

Result<MaterializeResult> TargetOutputs::place(const std::string& target, const ActionEntry& entry) {
  MB_TRY(m_fs.create_dirs(m_build_dir));
  // Two builds of one target must not swap build/TARGET under each other.
  MB_ASSIGN(auto lock, m_fs.lock(m_build_dir / ("." + target + ".lock")));
  return m_cache.materialize(entry, artifact_path(target));
}

Status TargetOutputs::write_report(const std::string& target, nlohmann::json report,
                                   const std::optional<Digest>& artifact_key) {
  if (artifact_key) report["artifact_key"] = artifact_key->hex();
  const fs::path file = m_build_dir / (target + ".report.json");
  const std::string text = report.dump(2) + "\n";
  if (auto old = m_fs.read_file(file); old.ok() && *old == text) return {};
  // A target whose artifact is a source links nothing, so build/ may not exist yet.
  MB_TRY(m_fs.create_dirs(m_build_dir));
  return write_file_atomic(m_fs, file, text);
}

std::optional<Digest> TargetOutputs::recorded_artifact_key(const std::string& target) const {
  auto text = m_fs.read_file(m_build_dir / (target + ".report.json"));
  if (!text.ok()) return std::nullopt;
  auto j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("artifact_key") || !j["artifact_key"].is_string()) return std::nullopt;
  auto d = Digest::from_hex(j["artifact_key"].get<std::string>());
  if (!d.ok()) return std::nullopt;
  return *d;
}

void TargetOutputs::remove_if_stale(const std::string& target, Staleness why) {
  if (why == Staleness::kNotAboutTheArtifact) return;
  const fs::path dest = artifact_path(target);
  if (!m_fs.stat(dest).ok()) return;
  m_reporter.warn(fmt::format("removed {}: it no longer matches the recipe and its target failed", dest.string()));
  (void)m_fs.remove_all(dest);
}

}  // namespace mb
