#pragma once
// TargetChecks: the checks phase of a build.
//
// A check is a threshold on a step's report (graph/plan.h Check). As soon as
// a step succeeds, built or cached, every check that reads its report runs:
// a failing check fails its target at once, and with it every requested
// target that needs it, so that e.g. the gate never spends time on an
// artifact whose adapter delta was rounded away. wanted() tells the scheduler
// whether a step still serves a live target. A metric missing from a report
// fails closed. Thread-safe.
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
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
  // True while some requested target that needs `step` has not failed.
  bool wanted(int step) const;
  // The check failures of `target` and of the targets it needs, one
  // sentence each (a needed target's say which).
  std::vector<std::string> failures_of(const std::string& target) const;

 private:
  // REQUIRES: m_mu held.
  void fail_target_and_users(const std::string& name);

  const Plan& m_plan;
  Reporter& m_reporter;
  std::vector<std::vector<std::string>> m_users;  // step -> requested targets that need it
  mutable std::mutex m_mu;
  std::set<std::string> m_failed;                           // guarded by m_mu
  std::map<std::string, std::set<std::string>> m_failures;  // guarded by m_mu
};

// Why `report` fails check `c` of step `label`, or nullopt when it passes.
std::optional<std::string> failed_check(const Check& c, const nlohmann::json& report, const std::string& label);

}  // namespace mb
