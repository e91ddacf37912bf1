#include "graph/plan.h"

#include <algorithm>
#include <functional>
#include <set>

#include "cache/action_key.h"

namespace mb {
namespace {

class Planner {
 public:
  explicit Planner(const Recipe& recipe) : m_recipe(recipe) {}

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

    TargetPlan tp;
    tp.name = name;
    for (const auto& ref : t->references())
      if (m_recipe.find_target(ref) &&
          std::find(tp.depends_on.begin(), tp.depends_on.end(), ref) == tp.depends_on.end())
        tp.depends_on.push_back(ref);
    size_t first_new = m_plan.steps.size();
    if (t->is_model()) {
      MB_TRY(expand_model(*t, tp));
    } else {
      MB_TRY(expand_command(*t, tp));
    }
    for (size_t i = first_new; i < m_plan.steps.size(); ++i) tp.own_steps.push_back(static_cast<int>(i));
    m_plan.targets[name] = std::move(tp);
    return {};
  }

  Plan finish() { return std::move(m_plan); }

 private:
  // An input that names a source or a target's artifact.
  Result<InputRef> resolve(const std::string& ref, const std::string& role, const TargetDecl& user,
                           bool allow_runtime_adapters = false) {
    if (m_recipe.find_source(ref)) return InputRef{role, ref, -1};
    const TargetPlan& dep = m_plan.targets.at(ref);
    if (!dep.artifact)
      return make_error(Errc::kInvalidInput, user.loc.str(), "target '{}' uses '{}', which has no artifact", user.name,
                        ref);
    if (!dep.runtime_adapters.empty() && !allow_runtime_adapters)
      return make_error(Errc::kInvalidInput, user.loc.str(),
                        "target '{}' uses '{}', which applies adapters at run time (fusion: none) and so has no "
                        "single model directory; fuse it first",
                        user.name, ref);
    InputRef out = *dep.artifact;
    out.role = role;
    return out;
  }

  int add_step(std::string kind, nlohmann::json params, std::vector<InputRef> inputs, const std::string& target,
               const std::string& role) {
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
    s.label = fmt::format("{} {}", role, target);
    s.slot = target + "/" + role;
    m_plan.steps.push_back(std::move(s));
    m_dedup[id] = m_plan.steps.back().index;
    return m_plan.steps.back().index;
  }

  Status expand_model(const TargetDecl& t, TargetPlan& tp) {
    const ModelTarget& m = t.model();
    MB_ASSIGN(InputRef base, resolve(m.base, "base", t));
    std::vector<InputRef> adapters;
    for (size_t i = 0; i < m.adapters.size(); ++i) {
      MB_ASSIGN(InputRef a, resolve(m.adapters[i], fmt::format("adapter.{}", i), t));
      adapters.push_back(std::move(a));
    }
    std::optional<InputRef> artifact = base;
    artifact->role = "model";
    nlohmann::json dtype = m.dtype ? nlohmann::json(*m.dtype) : nlohmann::json("auto");
    std::optional<double> min_retention = m.min_delta_retention;
    if (m.gate && m.gate->min_delta_retention) min_retention = m.gate->min_delta_retention;

    if (!adapters.empty() && m.fusion == Fusion::kNone) {
      tp.runtime_adapters = adapters;
    } else if (!adapters.empty() && m.fusion == Fusion::kInplace) {
      std::vector<InputRef> in = {base};
      in.insert(in.end(), adapters.begin(), adapters.end());
      int fuse = add_step("fuse", {{"mode", "inplace"}, {"quantizer", m.quantizer}}, in, t.name, "fuse");
      artifact = InputRef{"model", "", fuse};
      tp.retention_step = fuse;
      if (min_retention) tp.checks.push_back({fuse, "/retention/retained", *min_retention, "delta retention"});
    } else if (!adapters.empty()) {
      std::vector<InputRef> in = {base};
      in.insert(in.end(), adapters.begin(), adapters.end());
      // With bits, one streaming pass fuses and quantizes and measures how
      // much of the adapters' delta the bits keep: no float model is written
      // to the cache and read back (declare a float target to get one).
      nlohmann::json params = {{"mode", "dequantize"}, {"dtype", dtype}};
      if (m.bits) {
        params["bits"] = *m.bits;
        params["group_size"] = m.group_size;
        params["quantizer"] = m.quantizer;
      }
      int fuse = add_step("fuse", params, in, t.name, "fuse");
      artifact = InputRef{"model", "", fuse};
      if (m.bits) {
        tp.retention_step = fuse;
        if (min_retention) tp.checks.push_back({fuse, "/retention/retained", *min_retention, "delta retention"});
      }
    } else if (m.bits || m.dtype) {
      nlohmann::json bits = m.bits ? nlohmann::json(*m.bits) : nlohmann::json(nullptr);
      int q = add_step("quantize",
                       {{"bits", bits}, {"group_size", m.group_size}, {"quantizer", m.quantizer}, {"dtype", dtype}},
                       {InputRef{"model", base.source, base.step}}, t.name, "quantize");
      artifact = InputRef{"model", "", q};
    }
    tp.artifact = artifact;

    if (m.gate) {
      MB_ASSIGN(InputRef suite, resolve(m.gate->suite, "suite", t));
      std::vector<InputRef> in = {*artifact};
      for (size_t i = 0; i < tp.runtime_adapters.size(); ++i) {
        InputRef a = tp.runtime_adapters[i];
        a.role = fmt::format("adapter.{}", i);
        in.push_back(a);
      }
      in.push_back(suite);
      // Thresholds are checks, not params: changing min_accuracy re-checks
      // the cached verdict instead of re-running the suite.
      tp.gate_step = add_step("gate", {{"runner", m.gate->runner}}, in, t.name, "gate");
      tp.checks.push_back({tp.gate_step, "/accuracy", m.gate->min_accuracy, "accuracy", /*percent=*/true});
    }
    return {};
  }

  Status expand_command(const TargetDecl& t, TargetPlan& tp) {
    const CommandTarget& c = t.command();
    std::vector<InputRef> in;
    for (const auto& [role, ref] : c.inputs) {
      MB_ASSIGN(InputRef r, resolve(ref, role, t));
      in.push_back(std::move(r));
    }
    nlohmann::json params = {{"outputs", c.outputs}};
    if (!c.argv.empty())
      params["argv"] = c.argv;
    else
      params["shell"] = c.shell;
    int s = add_step("command", params, in, t.name, "command");
    tp.is_model = false;
    tp.artifact = InputRef{"output", "", s};
    return {};
  }

  const Recipe& m_recipe;
  Plan m_plan;
  std::map<std::string, int> m_dedup;
};

std::string input_text(const Plan& plan, const InputRef& in) {
  if (in.is_source()) return fmt::format("{}={}", in.role, in.source);
  return fmt::format("{}=#{} ({})", in.role, in.step, plan.steps[in.step].label);
}

}  // namespace

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
    if (tp.gate_step >= 0) add(tp.gate_step);
    if (tp.retention_step >= 0) add(tp.retention_step);
  }
  return {needed.begin(), needed.end()};
}

Result<Plan> make_plan(const Recipe& recipe, const std::vector<std::string>& targets) {
  Planner planner(recipe);
  std::vector<std::string> wanted = targets;
  if (wanted.empty())
    for (const auto& t : recipe.targets) wanted.push_back(t.name);
  for (const auto& name : wanted) MB_TRY(planner.add_target(name));
  Plan plan = planner.finish();
  plan.requested = wanted;
  return plan;
}

std::string plan_to_text(const Plan& plan) {
  std::string out;
  for (const auto& s : plan.steps) {
    out += fmt::format("#{} {} [{}] {}\n", s.index, s.kind, s.label, s.params.dump());
    for (const auto& in : s.inputs) out += fmt::format("    <- {}\n", input_text(plan, in));
  }
  for (const auto& name : plan.requested) {
    const TargetPlan& tp = plan.targets.at(name);
    std::string art = !tp.artifact               ? "-"
                      : tp.artifact->is_source() ? "source " + tp.artifact->source
                                                 : fmt::format("#{}", tp.artifact->step);
    out += fmt::format("target {}: artifact {}", name, art);
    if (!tp.runtime_adapters.empty()) out += fmt::format(" + {} runtime adapter(s)", tp.runtime_adapters.size());
    if (tp.gate_step >= 0) out += fmt::format(", gate #{}", tp.gate_step);
    out += "\n";
  }
  return out;
}

std::string plan_to_dot(const Plan& plan) {
  std::string out = "digraph modelbuild {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n";
  std::set<std::string> sources;
  for (const auto& s : plan.steps) {
    out += fmt::format("  s{} [shape=box, label=\"{}\\n{}\"];\n", s.index, s.kind, s.label);
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
    if (tp.gate_step >= 0) out += fmt::format("  s{} -> \"target:{}\" [style=dashed];\n", tp.gate_step, name);
  }
  out += "}\n";
  return out;
}

}  // namespace mb
