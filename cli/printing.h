#pragma once
// Shared output of the recipe commands: the per-target summary after a
// build, the per-case table of a failed gate, and small formatting helpers.
#include <string>

#include "cli/commands.h"
#include "graph/builder.h"
#include "graph/plan.h"

namespace mb::cli {

void print_build_summary(Session& s, const Plan& plan, const BuildReport& report, const GlobalOptions& g);
// The per-case report of a gate step (prompt, expected, got, first line).
std::string format_gate_cases(const nlohmann::json& gate_report, bool failures_only);
std::string human_size(uint64_t bytes);
// For a target that searches (bits: auto): one line per candidate that ran,
// with its verdict and why, or the values its checks read.
std::string candidate_lines(const Plan& plan, const BuildReport& report, const TargetResult& t);
std::string relative_to_cwd(const fs::path& p);

// `--check`: rebuild every step of the plan without the cache and compare
// the output digests with the cached ones.
int check_determinism(Session& s, const Plan& plan);
// Lets git-pinned sources be read straight from the object database.
void install_git_resolver(Session& s, Builder& builder);

}  // namespace mb::cli
