#include "graph/target_checks.h"

#include <algorithm>

namespace mb {

std::optional<std::string> failed_check(const Check& c, const nlohmann::json& report, const std::string& label) {
  nlohmann::json::json_pointer ptr(c.pointer);
  if (!report.contains(ptr) || !report[ptr].is_number())
    return fmt::format("{}: the step '{}' reported no {} (fails closed)", c.what, label, c.what);
  const double v = report[ptr].get<double>();
  if (v + 1e-12 >= c.min) return std::nullopt;
  if (c.percent)
    return fmt::format("{} {:.4g}% is below the required {:.4g}% (step '{}')", c.what, 100 * v, 100 * c.min, label);
  return fmt::format("{} {:.4g} is below the required {:.4g} (step '{}')", c.what, v, c.min, label);
}

TargetChecks::TargetChecks(const Plan& plan, Reporter& reporter) : m_plan(plan), m_reporter(reporter) {
  m_users.resize(plan.steps.size());
  for (const auto& name : plan.requested)
    for (int s : plan.steps_for(name)) m_users[static_cast<size_t>(s)].push_back(name);
}

void TargetChecks::after_step(int step, const nlohmann::json& report) {
  std::lock_guard<std::mutex> lock(m_mu);
  for (const auto& [name, tp] : m_plan.targets)
    for (const auto& c : tp.checks) {
      if (c.step != step) continue;
      auto why = failed_check(c, report, m_plan.steps[static_cast<size_t>(step)].label);
      if (!why) continue;
      if (m_failures[name].insert(*why).second) m_reporter.report({EventKind::kMessage, Level::kError, name, *why, {}});
      fail_target_and_users(name);
    }
}

bool TargetChecks::wanted(int step) const {
  std::lock_guard<std::mutex> lock(m_mu);
  for (const auto& t : m_users[static_cast<size_t>(step)])
    if (!m_failed.count(t)) return true;
  return false;
}

std::vector<std::string> TargetChecks::failures_of(const std::string& target) const {
  std::lock_guard<std::mutex> lock(m_mu);
  std::vector<std::string> out;
  for (const auto& dep : m_plan.closure(target)) {
    auto it = m_failures.find(dep);
    if (it == m_failures.end()) continue;
    for (const auto& f : it->second) out.push_back(dep == target ? f : fmt::format("{} (needed target '{}')", f, dep));
  }
  return out;
}

void TargetChecks::fail_target_and_users(const std::string& name) {
  m_failed.insert(name);
  for (const auto& req : m_plan.requested) {
    const auto closure = m_plan.closure(req);
    if (std::find(closure.begin(), closure.end(), name) != closure.end()) m_failed.insert(req);
  }
}

}  // namespace mb
