#include "graph/preflight.h"

#include "graph/target_kind.h"

namespace mb {

Preflight::Preflight(const FileSystem& fs, const Recipe& recipe, const Plan& plan, const SourceDigests& sources)
    : m_fs(fs), m_recipe(recipe), m_plan(plan), m_sources(sources) {}

Status Preflight::ensure() {
  std::lock_guard<std::mutex> lock(m_mu);
  if (!m_verdict) m_verdict = run();
  return *m_verdict;
}

Status Preflight::verdict() {
  std::lock_guard<std::mutex> lock(m_mu);
  return m_verdict.value_or(Status());
}

Status Preflight::run() const {
  const SourcePathFn source_path = [&](const std::string& name) -> Result<fs::path> {
    if (!m_recipe.find_source(name)) return fs::path();
    return m_sources.path(name);
  };
  for (const auto& [name, tp] : m_plan.targets) {
    const TargetDecl* t = m_recipe.find_target(name);
    if (t && t->spec) MB_TRY(t->spec->preflight(m_fs, source_path));
  }
  return {};
}

}  // namespace mb
