// Unit tests of the builder's phases, each on its own: source digests, step
// keys, preflight, target checks and target outputs. (Execution in staging
// is tested through a rule that throws in plugin_test.cc; the whole builder
// in builder_test.cc.)
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "base/fs_test_support.h"
#include "cache/cache.h"
#include "cache/file_digests.h"
#include "graph/preflight.h"
#include "graph/source_digests.h"
#include "graph/step_key.h"
#include "graph/target_checks.h"
#include "graph/target_kind.h"
#include "graph/target_outputs.h"

namespace mb {
namespace {

constexpr int64_t kHourNs = int64_t{3600} * 1000000000;

class PhasesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    add("/p/in.txt", "hello");
    add("/p/model/config.json", "{}");
    add("/p/model/w.bin", std::string(5000, 'w'));
    m_recipe.file = "/p/modelbuild.yaml";
    m_recipe.dir = "/p";
    m_recipe.sources["text"] = SourceDecl{"text", "/p/in.txt", std::nullopt, {}};
    m_recipe.sources["model"] = SourceDecl{"model", "/p/model", std::nullopt, {}};
  }
  void add(const fs::path& p, std::string_view content) {
    m_fs.add_file(p, content);
    ASSERT_TRUE(m_fs.set_mtime(p, m_fs.now_ns() - kHourNs).ok());
  }

  MemoryFileSystem m_fs;
  RecordingReporter m_reporter;
  FileDigestCache m_digests{m_fs, "/cache/state/file-digests", m_reporter};
  Recipe m_recipe;
};

// ---- Source digests ----

TEST_F(PhasesTest, SourceDigestsHashEachSourceOnceEvenFromManyThreads) {
  SourceDigests sources(m_recipe, m_digests, nullptr, 2);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&] {
      for (const char* name : {"text", "model", "text"}) ok += sources.get(name).ok();
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 18);
  EXPECT_EQ(m_digests.hashed_paths().size(), 3u);  // in.txt, config.json, w.bin: once each
  auto files = sources.files("model");
  ASSERT_EQ(files.size(), 2u);
  EXPECT_TRUE(files.count("w.bin"));
  EXPECT_TRUE(sources.files("text").count("in.txt"));
}

TEST_F(PhasesTest, SourceDigestsResolveGitPinsAndDoNotMemoizeErrors) {
  m_recipe.sources["pinned"] = SourceDecl{"pinned", "/repo", GitPin{"repo", "main", "x"}, {}};
  int calls = 0;
  SourceDigests sources(
      m_recipe, m_digests,
      [&](const SourceDecl&) -> Result<fs::path> {
        ++calls;
        return fs::path("/p/in.txt");
      },
      1);
  auto pinned = sources.get("pinned");
  ASSERT_TRUE(pinned.ok()) << pinned.error().to_string();
  EXPECT_EQ(pinned->path, "/p/in.txt");
  EXPECT_EQ(pinned->digest, sources.get("text")->digest);
  m_recipe.sources["gone"] = SourceDecl{"gone", "/p/missing", std::nullopt, {}};
  EXPECT_FALSE(sources.get("gone").ok());
  add("/p/missing", "now here");
  EXPECT_TRUE(sources.get("gone").ok());
  EXPECT_EQ(calls, 1);
}

// ---- Step keys ----

class KeyRule : public Rule {
 public:
  std::vector<fs::path> tools;
  std::string_view kind() const override { return "k"; }
  int algorithm_version() const override { return 3; }
  Status run(StepContext&) const override { return {}; }
  Status check_params(const nlohmann::json&) const override { return {}; }
  Result<std::vector<fs::path>> tool_inputs(const nlohmann::json&, const fs::path&) const override { return tools; }
};

TEST_F(PhasesTest, StepKeysCoverParamsSourcesUpstreamOutputsAndTools) {
  SourceDigests sources(m_recipe, m_digests, nullptr, 1);
  KeyRule rule;
  Step step;
  step.kind = "k";
  step.params = {{"bits", 8}};
  step.inputs = {InputRef{"text", "text", -1}, InputRef{"model", "", 0}};
  Digest up = digest_string("output of step 0");
  auto upstream = [&](int) { return UpstreamOutput{"/cache/views/x", up, "make step0"}; };
  auto key = [&] {
    auto k = key_step(step, rule, sources, m_digests, "/p", upstream);
    EXPECT_TRUE(k.ok()) << k.error().to_string();
    return k.ok() ? k->key : Digest();
  };
  const Digest base = key();
  EXPECT_EQ(key(), base);  // deterministic
  auto keyed = key_step(step, rule, sources, m_digests, "/p", upstream);
  ASSERT_EQ(keyed->inputs.size(), 2u);
  EXPECT_EQ(keyed->inputs[1].path, "/cache/views/x");
  EXPECT_EQ(keyed->record.inputs[1].origin, "step make step0");
  step.params["bits"] = 6;
  EXPECT_NE(key(), base);
  step.params["bits"] = 8;
  up = digest_string("another output");  // an upstream rebuild with other bytes
  EXPECT_NE(key(), base);
  up = digest_string("output of step 0");  // ... or the same bytes: early cutoff
  EXPECT_EQ(key(), base);
  add("/usr/bin/tool", "#!/bin/sh\n");
  rule.tools = {"/usr/bin/tool"};
  const Digest with_tool = key();
  EXPECT_NE(with_tool, base);
  m_fs.add_file("/usr/bin/tool", "#!/bin/sh\necho another version\n");
  ASSERT_TRUE(m_fs.set_mtime("/usr/bin/tool", m_fs.now_ns() - kHourNs / 2).ok());
  EXPECT_NE(key(), with_tool);
}

// ---- Preflight ----

struct CountingSpec : TargetSpec {
  mutable int calls = 0;
  mutable std::vector<std::string> paths;
  Status expand(TargetExpansion&) const override { return {}; }
  Status preflight(const FileSystem&, const SourcePathFn& source_path) const override {
    ++calls;
    for (const char* name : {"model", "other_target"}) paths.push_back(source_path(name)->string());
    return make_error(Errc::kInvalidInput, "/p/model/config.json", "not a model this engine runs");
  }
};

TEST_F(PhasesTest, PreflightRunsOnceAndGivesSourcesTheirPaths) {
  auto spec = std::make_shared<CountingSpec>();
  TargetDecl decl;  // by field: the aggregate form trips GCC 12's false -Wmaybe-uninitialized
  decl.name = "t";
  decl.kind = "counting";
  decl.spec = spec;
  m_recipe.targets.push_back(std::move(decl));
  Plan plan;
  plan.targets["t"] = TargetPlan{};
  SourceDigests sources(m_recipe, m_digests, nullptr, 1);
  Preflight preflight(m_fs, m_recipe, plan, sources);
  EXPECT_TRUE(preflight.verdict().ok());  // not run yet
  Status first = preflight.ensure();
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.error().where, "/p/model/config.json");
  EXPECT_FALSE(preflight.ensure().ok());
  EXPECT_FALSE(preflight.verdict().ok());
  EXPECT_EQ(spec->calls, 1);
  EXPECT_EQ(spec->paths, (std::vector<std::string>{"/p/model", ""}));
}

// ---- Target checks ----

Plan two_target_plan() {
  // step 0 feeds target a (check on step 0) and, through a, target b.
  Plan plan;
  plan.steps.resize(2);
  plan.steps[0].index = 0;
  plan.steps[0].label = "make a";
  plan.steps[1].index = 1;
  plan.steps[1].label = "use b";
  plan.steps[1].inputs = {InputRef{"in", "", 0}};
  TargetPlan a;
  a.name = "a";
  a.artifact = InputRef{"out", "", 0};
  a.checks = {Check{0, "/score", 0.5, false, "score", false}};
  TargetPlan b;
  b.name = "b";
  b.artifact = InputRef{"out", "", 1};
  b.depends_on = {"a"};
  plan.targets = {{"a", a}, {"b", b}};
  plan.requested = {"a", "b"};
  return plan;
}

TEST_F(PhasesTest, AFailingCheckFailsItsTargetAndEveryTargetThatNeedsIt) {
  const Plan plan = two_target_plan();
  TargetChecks checks(plan, m_reporter);
  EXPECT_TRUE(checks.wanted(1));
  checks.after_step(0, {{"score", 0.25}});
  EXPECT_FALSE(checks.wanted(0));
  EXPECT_FALSE(checks.wanted(1));  // b needs a, so its step does not run
  ASSERT_EQ(checks.failures_of("a").size(), 1u);
  EXPECT_EQ(checks.failures_of("a")[0], "score 0.25 is below the required 0.5 (step 'make a')");
  ASSERT_EQ(checks.failures_of("b").size(), 1u);
  EXPECT_NE(checks.failures_of("b")[0].find("(needed target 'a')"), std::string::npos);
}

TEST_F(PhasesTest, AMissingMetricFailsClosedAndPercentagesReadAsPercent) {
  const Plan plan = two_target_plan();
  TargetChecks checks(plan, m_reporter);
  checks.after_step(0, {{"other", 1}});
  ASSERT_EQ(checks.failures_of("a").size(), 1u);
  EXPECT_NE(checks.failures_of("a")[0].find("reported no score (fails closed)"), std::string::npos);
  Check pct{0, "/accuracy", 1.0, false, "accuracy", true};
  EXPECT_EQ(*failed_check(pct, {{"accuracy", 0.6}}, "gate t"),
            "accuracy 60% is below the required 100% (step 'gate t')");
  EXPECT_FALSE(failed_check(pct, {{"accuracy", 1.0}}, "gate t"));
}

// ---- Target outputs ----

TEST_F(PhasesTest, TargetReportsRecordTheArtifactKeyAndStaleOutputsAreRemovedOnlyWhenKnownStale) {
  Cache cache(m_fs, "/cache", m_reporter);
  ASSERT_TRUE(cache.init().ok());
  TargetOutputs outputs(m_fs, cache, m_reporter, "/p/build");
  const Digest key = digest_string("artifact key");
  ASSERT_TRUE(outputs.write_report("t", {{"target", "t"}}, key).ok());
  EXPECT_EQ(outputs.recorded_artifact_key("t"), key);
  EXPECT_FALSE(outputs.recorded_artifact_key("other"));
  add("/p/build/t/model.bin", "weights");
  using S = TargetOutputs::Staleness;
  outputs.remove_if_stale("t", S::kNotAboutTheArtifact);  // a full disk, a runner that cannot connect
  EXPECT_TRUE(m_fs.stat("/p/build/t/model.bin").ok());
  outputs.remove_if_stale("t", S::kBadVerdict);
  EXPECT_FALSE(m_fs.stat("/p/build/t").ok());
}

}  // namespace
}  // namespace mb
