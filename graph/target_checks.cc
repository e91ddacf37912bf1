#include "graph/target_checks.h"

#include <algorithm>
#include <functional>

namespace mb {
namespace {

// `roots` and every step they depend on.
std::set<int> closure_of(const Plan& plan, const std::vector<int>& roots) {
  std::set<int> out;
  std::function<void(int)> add = [&](int s) {
    if (!out.insert(s).second) return;
    for (int d : plan.steps[static_cast<size_t>(s)].deps()) add(d);
  };
  for (int r : roots) add(r);
  return out;
}

std::vector<int> candidate_roots(const Candidate& c) {
  std::vector<int> roots = c.steps;
  if (!c.artifact.is_source()) roots.push_back(c.artifact.step);
  for (const auto& check : c.checks) roots.push_back(check.step);
  for (const auto& [mark, step] : c.marks) roots.push_back(step);
  return roots;
}

TargetChecks::StepSets step_sets_of(const Plan& plan, const std::string& target) {
  TargetChecks::StepSets sets;
  const TargetPlan& tp = plan.targets.at(target);
  const std::vector<int> all = plan.steps_for(target);
  std::set<int> in_candidates;
  for (const Candidate& c : tp.candidates) {
    sets.candidates.push_back(closure_of(plan, candidate_roots(c)));
    in_candidates.insert(sets.candidates.back().begin(), sets.candidates.back().end());
  }
  for (int s : all)
    if (!in_candidates.count(s)) sets.base.insert(s);
  // A candidate's own steps are those no base step needs.
  for (auto& c : sets.candidates)
    for (int s : sets.base) c.erase(s);
  return sets;
}

}  // namespace

std::optional<std::string> failed_check(const Check& c, const nlohmann::json& report, const std::string& label) {
  nlohmann::json::json_pointer ptr(c.pointer);
  if (!report.contains(ptr) || !report[ptr].is_number())
    return fmt::format("{}: the step '{}' reported no {} (fails closed)", c.what, label, c.what);
  const double v = report[ptr].get<double>();
  if (c.at_most ? v <= c.min + 1e-12 : v + 1e-12 >= c.min) return std::nullopt;
  const double scale = c.percent ? 100 : 1;
  const char* unit = c.percent ? "%" : "";
  return fmt::format("{} {:.4g}{} is {} the {} {:.4g}{} (step '{}')", c.what, scale * v, unit,
                     c.at_most ? "above" : "below", c.at_most ? "allowed" : "required", scale * c.min, unit, label);
}

TargetChecks::TargetChecks(const Plan& plan, Reporter& reporter) : m_plan(plan), m_reporter(reporter) {
  m_users.resize(plan.steps.size());
  for (const auto& name : plan.requested) {
    for (int s : plan.steps_for(name)) m_users[static_cast<size_t>(s)].push_back(name);
    m_sets[name] = step_sets_of(plan, name);
  }
  for (const auto& [name, tp] : plan.targets) {
    if (tp.candidates.empty()) continue;
    Search& search = m_searches[name];
    search.outcomes.resize(tp.candidates.size());
    for (const Candidate& c : tp.candidates) {
      std::set<int> pending;
      for (const auto& check : c.checks) pending.insert(check.step);
      if (!c.artifact.is_source()) pending.insert(c.artifact.step);
      search.pending.push_back(std::move(pending));
    }
  }
}

void TargetChecks::after_step(int step, const nlohmann::json& report) {
  std::lock_guard<std::mutex> lock(m_mu);
  for (const auto& [name, tp] : m_plan.targets) {
    for (const auto& c : tp.checks) {
      if (c.step != step) continue;
      auto why = failed_check(c, report, m_plan.steps[static_cast<size_t>(step)].label);
      if (!why) continue;
      if (m_failures[name].insert(*why).second) m_reporter.report({EventKind::kMessage, Level::kError, name, *why, {}});
      fail_target_and_users(name);
    }
    if (!tp.candidates.empty()) judge_candidates(name, tp, step, report);
  }
}

void TargetChecks::judge_candidates(const std::string& name, const TargetPlan& tp, int step,
                                    const nlohmann::json& report) {
  Search& search = m_searches.at(name);
  bool all_rejected = true;
  for (size_t k = 0; k < tp.candidates.size(); ++k) {
    CandidateOutcome& out = search.outcomes[k];
    if (search.pending[k].erase(step) && out.verdict == Verdict::kUntried) {
      for (const auto& c : tp.candidates[k].checks)
        if (c.step == step)
          if (auto why = failed_check(c, report, m_plan.steps[static_cast<size_t>(step)].label))
            out.reasons.push_back(*why);
      if (!out.reasons.empty()) {
        out.verdict = Verdict::kRejected;
        m_reporter.report({EventKind::kMessage,
                           Level::kInfo,
                           name,
                           fmt::format("candidate {} rejected: {}", tp.candidates[k].name, out.reasons.front()),
                           {}});
      } else if (search.pending[k].empty()) {
        out.verdict = Verdict::kPassed;
      }
    }
    all_rejected &= out.verdict == Verdict::kRejected;
  }
  if (all_rejected && m_failures[name].insert("no candidate passed its checks").second) {
    m_reporter.report({EventKind::kMessage, Level::kError, name, "no candidate passed its checks", {}});
    fail_target_and_users(name);
  }
}

bool TargetChecks::candidate_live(const std::string& name, size_t k) const {
  const Search& search = m_searches.at(name);
  if (search.outcomes[k].verdict == Verdict::kRejected) return false;
  for (size_t j = 0; j < k; ++j)
    if (search.outcomes[j].verdict == Verdict::kPassed) return false;
  return true;
}

bool TargetChecks::wanted(int step) const {
  std::lock_guard<std::mutex> lock(m_mu);
  for (const auto& t : m_users[static_cast<size_t>(step)]) {
    if (m_failed.count(t)) continue;
    const StepSets& sets = m_sets.at(t);
    if (sets.base.count(step)) return true;
    for (size_t k = 0; k < sets.candidates.size(); ++k)
      if (sets.candidates[k].count(step) && candidate_live(t, k)) return true;
  }
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

std::vector<TargetChecks::CandidateOutcome> TargetChecks::candidates_of(const std::string& target) const {
  std::lock_guard<std::mutex> lock(m_mu);
  auto it = m_searches.find(target);
  return it == m_searches.end() ? std::vector<CandidateOutcome>{} : it->second.outcomes;
}

int TargetChecks::winner(const std::string& target) const {
  std::lock_guard<std::mutex> lock(m_mu);
  auto it = m_searches.find(target);
  if (it == m_searches.end()) return -1;
  // The first candidate that passed, once every candidate before it was
  // rejected (when a build only evaluates, an earlier one may be untried).
  for (size_t k = 0; k < it->second.outcomes.size(); ++k) {
    const Verdict v = it->second.outcomes[k].verdict;
    if (v == Verdict::kPassed) return static_cast<int>(k);
    if (v == Verdict::kUntried) return -1;
  }
  return -1;
}

void TargetChecks::fail_target_and_users(const std::string& name) {
  m_failed.insert(name);
  for (const auto& req : m_plan.requested) {
    const auto closure = m_plan.closure(req);
    if (std::find(closure.begin(), closure.end(), name) != closure.end()) m_failed.insert(req);
  }
}

}  // namespace mb
