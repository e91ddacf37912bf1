// The plug-in seam end to end: a target kind and a rule this test defines,
// reached from a recipe through a key graph/ has never heard of, built,
// explained and checked with no built-in kind registered at all.
#include <gtest/gtest.h>
#include <sys/time.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "base/temp_dir.h"
#include "graph/builder.h"
#include "graph/params.h"
#include "graph/registry.h"
#include "graph/target_kind.h"

namespace mb {
namespace {

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// "shout": {text, suffix} -> an upper-cased copy; reports its length.
struct ShoutParams {
  std::string suffix;
  static Result<ShoutParams> parse(const nlohmann::json& j) {
    ShoutParams p;
    ParamReader r(j);
    r.required("suffix", p.suffix);
    MB_TRY(r.finish());
    return p;
  }
};

class ShoutRule : public Rule {
 public:
  explicit ShoutRule(int* runs) : m_runs(runs) {}
  std::string_view kind() const override { return "shout"; }
  int algorithm_version() const override { return 1; }
  Status check_params(const nlohmann::json& params) const override { return ShoutParams::parse(params).status(); }
  std::vector<ReportField> report_fields() const override { return {{"length", "/length"}}; }
  Status run(StepContext& ctx) const override {
    MB_ASSIGN(ShoutParams p, ShoutParams::parse(ctx.params));
    if (p.suffix == "throw") throw std::runtime_error("the shout rule threw");
    ++*m_runs;
    std::string text = read(ctx.input("text")->path);
    for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    text += p.suffix;
    ctx.report["length"] = text.size();
    return write_file_atomic(ctx.fs, ctx.output_dir / "shout.txt", text);
  }

 private:
  int* m_runs;
};

// The target kind: `shout: SOURCE`, `suffix:` and `min_length:`. A typo'd
// parameter name (the `misspell` switch) must be caught by the rule.
struct ShoutSpec : TargetSpec {
  std::string text;
  std::string suffix = "!";
  std::optional<double> min_length;
  bool misspell = false;
  Status expand(TargetExpansion& x) const override {
    MB_ASSIGN(InputRef in, x.resolve(text, "text"));
    const int s = x.add_step("shout", {{misspell ? "sufix" : "suffix", suffix}}, {in}, "shout");
    x.plan().artifact = InputRef{"out", "", s};
    if (min_length) MB_TRY(x.add_check(s, "length", *min_length));
    return {};
  }
};

class ShoutKind : public TargetKind {
 public:
  std::string_view name() const override { return "shout"; }
  std::string_view marker_key() const override { return "shout"; }
  std::vector<std::string> keys() const override { return {"shout", "suffix", "min_length", "misspell"}; }
  Result<std::shared_ptr<const TargetSpec>> parse(TargetReader& r) const override {
    auto s = std::make_shared<ShoutSpec>();
    MB_ASSIGN(s->text, r.reference("shout"));
    if (r.has("suffix")) {
      MB_ASSIGN(s->suffix, r.string("suffix"));
    }
    if (r.has("min_length")) {
      MB_ASSIGN(s->min_length, r.number("min_length"));
    }
    s->misspell = r.has("misspell");
    return std::shared_ptr<const TargetSpec>(std::move(s));
  }
};

class PluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    m_rules.add(std::make_unique<ShoutKind>());
    m_rules.add(std::make_unique<ShoutRule>(&m_runs));
    set_text("hello");
  }
  void set_text(const std::string& text) {
    std::ofstream(m_dir.path() / "in.txt") << text;
    // An hour back, so the digest cache trusts the fingerprint.
    struct timeval times[2] = {{::time(nullptr) - 3600, 0}, {::time(nullptr) - 3600, 0}};
    ::utimes((m_dir.path() / "in.txt").c_str(), times);
  }
  Result<Recipe> recipe(const std::string& target) {
    return parse_recipe_text(*m_fs, "sources: {greeting: in.txt}\ntargets:\n  loud: " + target + "\n",
                             m_dir.path() / "modelbuild.yaml", m_rules);
  }
  BuildOptions options() const {
    BuildOptions o;
    o.cache_dir = m_dir.path() / ".modelbuild";
    o.state_dir = m_dir.path() / ".modelbuild/state";
    o.build_dir = m_dir.path() / "build";
    o.jobs = 2;
    return o;
  }
  // Builds (or evaluates) target `loud` declared as `target`.
  BuildReport build(const std::string& target, bool execute = true) {
    auto r = recipe(target);
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    auto plan = make_plan(*r, m_rules, {});
    EXPECT_TRUE(plan.ok()) << plan.error().to_string();
    Builder b(*m_fs, m_reporter, m_rules, options());
    auto report = execute ? b.build(*r, *plan) : b.evaluate(*r, *plan);
    EXPECT_TRUE(report.ok()) << report.error().to_string();
    return report.ok() ? *report : BuildReport{};
  }

  TempDir m_dir{"plugin-test"};
  std::unique_ptr<FileSystem> m_fs = make_real_file_system();
  Registry m_rules;
  RecordingReporter m_reporter;
  int m_runs = 0;
};

TEST_F(PluginTest, ANewKeyReachesANewRuleThatBuildsAndCaches) {
  BuildReport r = build("{shout: greeting, suffix: '!!'}");
  ASSERT_EQ(r.targets.size(), 1u);
  EXPECT_EQ(r.targets[0].state, TargetState::kBuilt);
  EXPECT_EQ(read(m_dir.path() / "build/loud/shout.txt"), "HELLO!!");
  EXPECT_EQ(m_runs, 1);
  EXPECT_EQ(build("{shout: greeting, suffix: '!!'}").targets[0].state, TargetState::kUpToDate);
  EXPECT_EQ(m_runs, 1);
}

TEST_F(PluginTest, ExplainSaysWhatChanged) {
  build("{shout: greeting}");
  BuildReport r = build("{shout: greeting, suffix: '?'}", /*execute=*/false);
  ASSERT_EQ(r.steps.size(), 1u);
  EXPECT_EQ(r.steps[0].state, StepState::kStale);
  ASSERT_FALSE(r.steps[0].why.empty());
  EXPECT_NE(r.steps[0].why[0].find("suffix"), std::string::npos) << r.steps[0].why[0];
  set_text("hello there");
  r = build("{shout: greeting}", /*execute=*/false);
  ASSERT_FALSE(r.steps[0].why.empty());
  EXPECT_NE(r.steps[0].why[0].find("greeting"), std::string::npos) << r.steps[0].why[0];
}

TEST_F(PluginTest, AChecksOnTheRulesReportFieldPassesOrFailsTheTarget) {
  EXPECT_EQ(build("{shout: greeting, min_length: 6}").targets[0].state, TargetState::kBuilt);
  BuildReport r = build("{shout: greeting, min_length: 7}");
  EXPECT_EQ(r.targets[0].state, TargetState::kFailed);
  EXPECT_EQ(r.exit_code(), 3);
  ASSERT_EQ(r.targets[0].failures.size(), 1u);
  EXPECT_NE(r.targets[0].failures[0].find("length 6 is below the required 7"), std::string::npos)
      << r.targets[0].failures[0];
  EXPECT_EQ(m_runs, 1);  // the threshold is a check, not a parameter: nothing re-ran
}

TEST_F(PluginTest, KeysTheKindDoesNotOwnAreRejectedWithASuggestion) {
  auto r = recipe("{shout: greeting, sufix: x}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(exit_code_for(r.error().code), 2);
  EXPECT_NE(r.error().message.find("did you mean 'suffix'"), std::string::npos) << r.error().to_string();
  EXPECT_NE(r.error().where.find("modelbuild.yaml:3:"), std::string::npos) << r.error().where;
}

TEST_F(PluginTest, AMisspeltParameterIsAPlanningError) {
  auto r = recipe("{shout: greeting, misspell: true}");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  auto plan = make_plan(*r, m_rules, {});
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.error().message.find("unknown parameter 'sufix'"), std::string::npos) << plan.error().to_string();
}

TEST_F(PluginTest, ACheckOnAFieldTheRuleDoesNotReportIsAPlanningError) {
  struct BadSpec : ShoutSpec {
    Status expand(TargetExpansion& x) const override {
      MB_ASSIGN(InputRef in, x.resolve(text, "text"));
      const int s = x.add_step("shout", {{"suffix", "!"}}, {in}, "shout");
      return x.add_check(s, "loudness", 1);
    }
  };
  Recipe recipe;
  recipe.file = m_dir.path() / "modelbuild.yaml";
  recipe.sources["greeting"] = SourceDecl{"greeting", m_dir.path() / "in.txt", std::nullopt, {}};
  auto spec = std::make_shared<BadSpec>();
  spec->text = "greeting";
  TargetDecl decl;  // by field: the aggregate form trips GCC 12's false -Wmaybe-uninitialized
  decl.name = "loud";
  decl.kind = "shout";
  decl.spec = spec;
  decl.refs = {{"greeting", {}}};
  recipe.targets.push_back(std::move(decl));
  auto plan = make_plan(recipe, m_rules, {});
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.error().message.find("'loudness'"), std::string::npos) << plan.error().to_string();
}

// An exception on a worker thread is the step's failure, with its message,
// exit status 1, and nothing in the cache or build/.
TEST_F(PluginTest, AnExceptionInARuleFailsTheStepAndPublishesNothing) {
  BuildReport r = build("{shout: greeting, suffix: throw}");
  ASSERT_EQ(r.steps.size(), 1u);
  EXPECT_EQ(r.steps[0].state, StepState::kFailed);
  EXPECT_NE(r.steps[0].error.find("the shout rule threw"), std::string::npos) << r.steps[0].error;
  EXPECT_EQ(r.exit_code(), 1);
  EXPECT_FALSE(fs::exists(m_dir.path() / "build/loud"));
  size_t entries = 0;
  for (auto it = fs::recursive_directory_iterator(m_dir.path() / ".modelbuild/ac");
       it != fs::recursive_directory_iterator(); ++it)
    entries += it->is_regular_file();
  EXPECT_EQ(entries, 0u);
  EXPECT_TRUE(fs::is_empty(m_dir.path() / ".modelbuild/tmp"));
}

}  // namespace
}  // namespace mb
