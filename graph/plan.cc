#include "graph/plan.h"

#include <algorithm>
#include <functional>
#include <set>

#include "cache/action_key.h"
#include "graph/registry.h"
#include "graph/target_kind.h"

namespace mb {
namespace {

// Expands targets into steps, one target at a time; implements the
// TargetExpansion a TargetSpec sees for the target being expanded.
class Planner : public TargetExpansion {
 public:
  Planner(const Recipe& recipe, const Registry& registry) : m_recipe(recipe), m_registry(registry) {}

  Status add_target(const std::string& name) {
    if (m_plan.targets.count(name)) return {};
    const TargetDecl* t = m_recipe.find_target(name);
    if (!t) {
      std::vector<std::string> names;
      for (const auto& x : m_recipe.targets) names.push_back(x.name);
      std::string hint = did_you_mean(name, names);
      return make_error(Errc::kInvalidInput, m_recipe.file.string(), "no target named '{}'{}", name,
                        hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint));
    }
    // Dependencies first, so their steps get lower indices.
    for (const auto& ref : t->references())
      if (m_recipe.find_target(ref)) MB_TRY(add_target(ref));

    m_target = t;
    m_current = TargetPlan{};
    m_current.name = name;
    m_current.kind = t->kind;
    for (const auto& ref : t->references())
      if (m_recipe.find_target(ref)) m_current.depends_on.push_back(ref);
    const size_t first_new = m_plan.steps.size();
    MB_TRY(t->spec->expand(*this));
    for (size_t i = first_new; i < m_plan.steps.size(); ++i) m_current.own_steps.push_back(static_cast<int>(i));
    m_plan.targets[name] = std::move(m_current);
    return {};
  }

  // Every step has a rule, and its rule accepts its parameters.
  Status check_steps() const {
    for (const Step& s : m_plan.steps) {
      const Rule* rule = m_registry.rule(s.kind);
      if (!rule) return make_error(Errc::kInternal, s.label, "no rule for step kind '{}'", s.kind);
      if (Status st = rule->check_params(s.params); !st.ok())
        return make_error(Errc::kInternal, s.label, "bad step parameters: {}", st.error().to_string());
    }
    return {};
  }

  Plan finish() { return std::move(m_plan); }

  // ---- TargetExpansion ----

  const std::string& target() const override { return m_target->name; }
  const Location& location() const override { return m_target->loc; }
  TargetPlan& plan() override { return m_current; }

  const TargetPlan* target_plan(const std::string& name) const override {
    auto it = m_plan.targets.find(name);
    return it == m_plan.targets.end() ? nullptr : &it->second;
  }

  Result<InputRef> resolve(const std::string& ref, const std::string& role) override {
    if (m_recipe.find_source(ref)) return InputRef{role, ref, -1};
    const TargetPlan& dep = m_plan.targets.at(ref);
    if (!dep.candidates.empty())
      return make_error(Errc::kInvalidInput, location().str(),
                        "target '{}' uses '{}', whose artifact a search chooses when it is built (e.g. bits: auto); "
                        "only a final target can search",
                        target(), ref);
    if (!dep.artifact)
      return make_error(Errc::kInvalidInput, location().str(), "target '{}' uses '{}', which has no artifact", target(),
                        ref);
    if (!dep.runtime_inputs.empty())
      return make_error(Errc::kInvalidInput, location().str(),
                        "target '{}' uses '{}', which needs run-time inputs beside its artifact (e.g. adapters "
                        "applied at run time, fusion: none) and so has no single artifact; fuse it first",
                        target(), ref);
    InputRef out = *dep.artifact;
    out.role = role;
    return out;
  }

  int add_step(std::string kind, nlohmann::json params, std::vector<InputRef> inputs,
               const std::string& role) override {
    params = normalize_json(params);
    // Structural identity: kind, params and where each input comes from.
    nlohmann::json identity = {{"kind", kind}, {"params", params}, {"inputs", nlohmann::json::array()}};
    for (const auto& in : inputs)
      identity["inputs"].push_back(
          {in.role, in.is_source() ? "source:" + in.source : "step:" + std::to_string(in.step)});
    std::string id = canonical_json(identity);
    if (auto it = m_dedup.find(id); it != m_dedup.end()) return it->second;
    Step s;
    s.index = static_cast<int>(m_plan.steps.size());
    s.kind = std::move(kind);
    s.params = std::move(params);
    s.inputs = std::move(inputs);
    s.label = fmt::format("{} {}", role, target());
    s.slot = target() + "/" + role;
    m_plan.steps.push_back(std::move(s));
    m_dedup[id] = m_plan.steps.back().index;
    return m_plan.steps.back().index;
  }

  Status add_check(int step, std::string_view field, double min) override {
    MB_ASSIGN(Check c, make_check(step, field, min));
    m_current.checks.push_back(std::move(c));
    return {};
  }

  Result<Check> make_check(int step, std::string_view field, double min) override {
    const Step& s = m_plan.steps.at(static_cast<size_t>(step));
    const Rule* rule = m_registry.rule(s.kind);
    if (rule)
      for (const ReportField& f : rule->report_fields())
        if (f.name == field) return Check{step, f.pointer, min, f.lower_is_better, f.name, f.percent};
    return make_error(Errc::kInternal, s.label, "a check reads '{}', which step kind '{}' does not report", field,
                      s.kind);
  }

  void order_after(int step, int before) override {
    std::vector<int>& after = m_plan.steps.at(static_cast<size_t>(step)).after;
    if (step != before && std::find(after.begin(), after.end(), before) == after.end()) after.push_back(before);
  }

 private:
  const Recipe& m_recipe;
  const Registry& m_registry;
  Plan m_plan;
  std::map<std::string, int> m_dedup;
  const TargetDecl* m_target = nullptr;
  TargetPlan m_current;
};

std::string input_text(const Plan& plan, const InputRef& in) {
  if (in.is_source()) return fmt::format("{}={}", in.role, in.source);
  return fmt::format("{}=#{} ({})", in.role, in.step, plan.steps[in.step].label);
}

}  // namespace

int TargetPlan::marked(std::string_view name) const {
  auto it = marks.find(name);
  return it == marks.end() ? -1 : it->second;
}

int Candidate::marked(std::string_view name) const {
  auto it = marks.find(name);
  return it == marks.end() ? -1 : it->second;
}

std::vector<int> Step::deps() const {
  std::vector<int> out;
  for (const auto& in : inputs)
    if (!in.is_source() && std::find(out.begin(), out.end(), in.step) == out.end()) out.push_back(in.step);
  return out;
}

std::vector<std::string> Plan::closure(const std::string& target) const {
  std::vector<std::string> out;
  std::function<void(const std::string&)> visit = [&](const std::string& name) {
    if (std::find(out.begin(), out.end(), name) != out.end()) return;
    for (const auto& dep : targets.at(name).depends_on) visit(dep);
    out.push_back(name);
  };
  visit(target);
  return out;
}

std::vector<int> Plan::steps_for(const std::string& target) const {
  std::set<int> needed;
  std::function<void(int)> add = [&](int s) {
    if (!needed.insert(s).second) return;
    for (int d : steps[s].deps()) add(d);
  };
  for (const auto& name : closure(target)) {
    const TargetPlan& tp = targets.at(name);
    if (tp.artifact && !tp.artifact->is_source()) add(tp.artifact->step);
    for (const auto& in : tp.runtime_inputs)
      if (!in.is_source()) add(in.step);
    for (const auto& [mark, step] : tp.marks) add(step);
    for (const auto& c : tp.checks) add(c.step);
    for (const Candidate& cand : tp.candidates) {
      if (!cand.artifact.is_source()) add(cand.artifact.step);
      for (const auto& c : cand.checks) add(c.step);
      for (const auto& [mark, step] : cand.marks) add(step);
      for (int s : cand.steps) add(s);
    }
  }
  return {needed.begin(), needed.end()};
}

Result<Plan> make_plan(const Recipe& recipe, const Registry& registry, const std::vector<std::string>& targets) {
  Planner planner(recipe, registry);
  std::vector<std::string> wanted = targets;
  if (wanted.empty())
    for (const auto& t : recipe.targets) wanted.push_back(t.name);
  for (const auto& name : wanted) MB_TRY(planner.add_target(name));
  MB_TRY(planner.check_steps());
  Plan plan = planner.finish();
  plan.requested = wanted;
  return plan;
}

std::string plan_to_text(const Plan& plan) {
  std::string out;
  for (const auto& s : plan.steps) {
    out += fmt::format("#{} {} [{}] {}\n", s.index, s.kind, s.label, s.params.dump());
    for (int a : s.after) out += fmt::format("    after #{}\n", a);
    for (const auto& in : s.inputs) out += fmt::format("    <- {}\n", input_text(plan, in));
  }
  for (const auto& name : plan.requested) {
    const TargetPlan& tp = plan.targets.at(name);
    std::string art = !tp.artifact               ? "-"
                      : tp.artifact->is_source() ? "source " + tp.artifact->source
                                                 : fmt::format("#{}", tp.artifact->step);
    if (!tp.candidates.empty()) {
      art = "the first of";
      for (const Candidate& c : tp.candidates)
        art += fmt::format(" {}", c.artifact.is_source() ? c.artifact.source : fmt::format("#{}", c.artifact.step));
      art += " whose checks pass";
    }
    out += fmt::format("target {}: artifact {}", name, art);
    if (!tp.runtime_inputs.empty()) out += fmt::format(" + {} run-time input(s)", tp.runtime_inputs.size());
    for (const auto& [mark, step] : tp.marks)
      if (!tp.artifact || tp.artifact->step != step) out += fmt::format(", {} #{}", mark, step);
    out += "\n";
  }
  return out;
}

std::string plan_to_dot(const Plan& plan) {
  std::string out = "digraph modelbuild {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n";
  std::set<std::string> sources;
  for (const auto& s : plan.steps) {
    out += fmt::format("  s{} [shape=box, label=\"{}\\n{}\"];\n", s.index, s.kind, s.label);
    for (int a : s.after) out += fmt::format("  s{} -> s{} [style=dotted, arrowhead=none];\n", a, s.index);
    for (const auto& in : s.inputs) {
      if (in.is_source()) {
        if (sources.insert(in.source).second)
          out += fmt::format("  \"src:{}\" [shape=note, label=\"{}\"];\n", in.source, in.source);
        out += fmt::format("  \"src:{}\" -> s{} [label=\"{}\"];\n", in.source, s.index, in.role);
      } else {
        out += fmt::format("  s{} -> s{} [label=\"{}\"];\n", in.step, s.index, in.role);
      }
    }
  }
  for (const auto& name : plan.requested) {
    const TargetPlan& tp = plan.targets.at(name);
    out += fmt::format("  \"target:{}\" [shape=doubleoctagon, label=\"{}\"];\n", name, name);
    if (tp.artifact) {
      if (tp.artifact->is_source())
        out += fmt::format("  \"src:{}\" -> \"target:{}\";\n", tp.artifact->source, name);
      else
        out += fmt::format("  s{} -> \"target:{}\";\n", tp.artifact->step, name);
    }
    for (const auto& [mark, step] : tp.marks)
      if (!tp.artifact || tp.artifact->step != step)
        out += fmt::format("  s{} -> \"target:{}\" [style=dashed];\n", step, name);
    for (const Candidate& c : tp.candidates)
      if (!c.artifact.is_source())
        out += fmt::format("  s{} -> \"target:{}\" [style=dotted, label=\"{}\"];\n", c.artifact.step, name, c.name);
  }
  out += "}\n";
  return out;
}

}  // namespace mb
