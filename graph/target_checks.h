#pragma once
// TargetChecks: the checks phase of a build.
//
// A check is a threshold on a step's report (graph/plan.h Check). As soon as
// a step succeeds, built or cached, every check that reads its report runs:
// a failing check fails its target at once, and with it every requested
// target that needs it, so that e.g. the gate never spends time on an
// artifact whose adapter delta was rounded away. wanted() tells the scheduler
// whether a step still serves a live target. A metric missing from a report
// fails closed.
//
// A target that searches (TargetPlan::candidates) is judged candidate by
// candidate: a failing check rejects that candidate only; the first candidate
// whose checks all pass wins, and the steps of the candidates after it are
// no longer wanted. The target fails when every candidate is rejected.
//
// Thread-safe.
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/reporter.h"
#include "graph/plan.h"

namespace mb {

class TargetChecks {
 public:
  TargetChecks(const Plan& plan, Reporter& reporter);

  // Runs the checks on `step`'s report; failures are reported once each.
  void after_step(int step, const nlohmann::json& report);
  // True while some requested target that needs `step` has not failed (and,
  // for a candidate's step, while that candidate may still be needed).
  bool wanted(int step) const;
  // The check failures of `target` and of the targets it needs, one
  // sentence each (a needed target's say which).
  std::vector<std::string> failures_of(const std::string& target) const;

  enum class Verdict { kUntried, kRejected, kPassed };
  struct CandidateOutcome {
    Verdict verdict = Verdict::kUntried;
    std::vector<std::string> reasons;  // why it was rejected
  };
  // One per candidate of `target`, in order (empty when it does not search).
  std::vector<CandidateOutcome> candidates_of(const std::string& target) const;
  // The winning candidate's index, or -1.
  int winner(const std::string& target) const;

  // The steps a target needs besides its candidates', and each candidate's
  // own, for deciding which skipped steps mean "not built".
  struct StepSets {
    std::set<int> base;
    std::vector<std::set<int>> candidates;
  };
  const StepSets& step_sets(const std::string& target) const { return m_sets.at(target); }

 private:
  struct Search {
    std::vector<CandidateOutcome> outcomes;
    std::vector<std::set<int>> pending;  // steps each candidate still waits for
  };
  // REQUIRES: m_mu held.
  void fail_target_and_users(const std::string& name);
  void judge_candidates(const std::string& name, const TargetPlan& tp, int step, const nlohmann::json& report);
  bool candidate_live(const std::string& name, size_t k) const;

  const Plan& m_plan;
  Reporter& m_reporter;
  std::vector<std::vector<std::string>> m_users;  // step -> requested targets that need it
  std::map<std::string, StepSets> m_sets;         // requested targets
  mutable std::mutex m_mu;
  std::set<std::string> m_failed;                           // guarded by m_mu
  std::map<std::string, std::set<std::string>> m_failures;  // guarded by m_mu
  std::map<std::string, Search> m_searches;                 // guarded by m_mu
};

// Why `report` fails check `c` of step `label`, or nullopt when it passes.
std::optional<std::string> failed_check(const Check& c, const nlohmann::json& report, const std::string& label);

}  // namespace mb
