// Engine tests with fake rules: they parse an inline recipe and assert on
// which steps ran (ninja's style), on real files in a temporary directory.
#include "graph/builder.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "base/fs_test_support.h"
#include "base/temp_dir.h"
#include "cache/file_digests.h"
#include "rules/command.h"
#include "rules/gate.h"
#include "rules/model_target.h"

namespace mb {
namespace {

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

// Sets a file's mtime an hour back, so the digest cache can trust it (a file
// written in the same instant it is hashed is "racily clean").
void age(const fs::path& p) {
  struct timespec times[2];
  times[0].tv_sec = times[1].tv_sec = ::time(nullptr) - 3600;
  times[0].tv_nsec = times[1].tv_nsec = 0;
  ::utimensat(AT_FDCWD, p.c_str(), times, 0);
}

// Every fake rule appends "<kind> <label>" to a log, with O_APPEND so that
// concurrent processes can share it.
class FakeRule : public Rule {
 public:
  FakeRule(std::string kind, fs::path log) : m_kind(std::move(kind)), m_log(std::move(log)) {}
  std::string_view kind() const override { return m_kind; }
  int algorithm_version() const override { return 1; }
  Status check_params(const nlohmann::json&) const override { return {}; }
  std::vector<ReportField> report_fields() const override {
    return {{"accuracy", "/accuracy", true}, {"delta retention", "/retention/retained"}};
  }
  bool judges() const override { return m_kind == "gate"; }
  Status run(StepContext& ctx) const override {
    { std::ofstream(m_log, std::ios::app) << m_kind << " " << ctx.step_label << "\n"; }
    fs::path dir = m_log.parent_path();
    if (fs::exists(dir / "slow")) std::this_thread::sleep_for(std::chrono::milliseconds(400));
    if (m_kind == "fuse") {
      // Upper-cased concatenation: a case-only change of the base gives the
      // same output (for the early-cutoff test).
      std::string text = read(ctx.input("base")->path / "w.txt");
      // += "+", then the text: "+" + read(…) trips GCC 12's false -Wrestrict.
      for (auto* a : ctx.inputs_with_prefix("adapter.")) text.append("+").append(read(a->path / "a.txt"));
      for (auto& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      // With bits the fuse step quantizes in the same pass.
      const std::string q = ctx.params.contains("bits") ? "q" + ctx.params["bits"].dump() + ":" : "";
      std::ofstream(ctx.output_dir / "model.txt") << q << text << " mode=" << ctx.params["mode"].get<std::string>();
      if (fs::exists(dir / "crash")) {
        std::ofstream(ctx.output_dir / "partial.bin") << "half";
        ::kill(::getpid(), SIGKILL);
      }
      // Fewer bits keep less of the delta (the search tests rely on it).
      const double bits = ctx.params.contains("bits") ? ctx.params["bits"].get<double>() : 8.0;
      ctx.report["retention"] = {{"retained", ctx.params["mode"] == "inplace" ? 0.05 : 0.97 * bits / 8}};
      return {};
    }
    if (m_kind == "quantize") {
      std::ofstream(ctx.output_dir / "model.txt")
          << "q" << ctx.params["bits"].dump() << ":" << read(ctx.input("model")->path / "model.txt");
      return {};
    }
    if (m_kind == "gate") {
      std::string model = read(ctx.input("model")->path / "model.txt");
      // The adapter's behaviour survives 6 bits and more (or float).
      const bool low_bits = model.size() > 2 && model[0] == 'q' && model[1] < '6';
      double acc = model.find("ADAPTER") != std::string::npos && !low_bits ? 1.0 : 0.6;
      ctx.report["accuracy"] = acc;
      std::ofstream(ctx.output_dir / "gate.json") << acc;
      return {};
    }
    if (m_kind == "command") {  // "fails" when asked to
      if (ctx.params.contains("shell") && ctx.params["shell"] == "false")
        return make_error(Errc::kStepFailed, ctx.step_label, "command exited with status 1");
      std::ofstream(ctx.output_dir / "out.txt") << "ok";
      return {};
    }
    return make_error(Errc::kInternal, ctx.step_label, "unknown fake");
  }

 private:
  std::string m_kind;
  fs::path m_log;
};

// The built-in model kind without its preflight: these tests' "models" are
// text files the fake rules read.
class TextModelKind : public ModelTargetKind {
 public:
  Result<std::shared_ptr<const TargetSpec>> parse(TargetReader& r) const override {
    struct Unchecked : TargetSpec {
      std::shared_ptr<const TargetSpec> inner;
      Status expand(TargetExpansion& x) const override { return inner->expand(x); }
    };
    auto spec = std::make_shared<Unchecked>();
    MB_ASSIGN(spec->inner, ModelTargetKind::parse(r));
    return std::shared_ptr<const TargetSpec>(std::move(spec));
  }
};

class BuilderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Real recipes and plans (the built-in target kinds), fake execution.
    m_rules.add(std::make_unique<TextModelKind>());
    m_rules.add(std::make_unique<CommandTargetKind>());
    for (const char* kind : {"fuse", "quantize", "gate", "command"})
      m_rules.add(std::make_unique<FakeRule>(kind, log_path()));
    write(dir() / "base/w.txt", "base weights");
    write(dir() / "lora/a.txt", "adapter delta");
    write(dir() / "suite.yaml", "cases");
    for (auto p : {"base/w.txt", "lora/a.txt", "suite.yaml"}) age(dir() / p);
    set_recipe(8);
  }

  fs::path dir() const { return m_tmp.path(); }
  fs::path log_path() const { return m_tmp.path() / "runs.log"; }

  void set_recipe(int bits, const std::string& extra = "") {
    m_recipe_text = fmt::format(R"(
sources: {{base: base, lora: lora, suite: suite.yaml}}
targets:
  fused:
    base: base
    adapters: [lora]
    bits: {}
    gate: {{suite: suite, min_accuracy: 1.0}}
  base_only:
    base: base
    bits: 4
  inplace:
    base: base
    adapters: [lora]
    fusion: inplace
    min_delta_retention: 0.9
    gate: {{suite: suite}}
  plain:
    base: base
    gate: {{suite: suite}}
{}
)",
                                bits, extra);
  }

  BuildOptions options() const {
    BuildOptions o;
    o.cache_dir = dir() / ".modelbuild";
    o.state_dir = dir() / ".modelbuild/state";
    o.build_dir = dir() / "build";
    o.jobs = 2;
    o.threads_per_step = 1;
    return o;
  }

  void expect_retention_failure(const std::string& target, const std::string& failure);

  // Builds `targets` and returns the lines the fake rules logged meanwhile.
  std::vector<std::string> build(const std::vector<std::string>& targets, BuildReport* out = nullptr,
                                 BuildOptions opts = {}) {
    if (opts.cache_dir.empty()) opts = options();
    fs::remove(log_path());
    auto recipe = parse_recipe_text(*m_fs, m_recipe_text, dir() / "modelbuild.yaml", m_rules);
    EXPECT_TRUE(recipe.ok()) << recipe.error().to_string();
    auto plan = make_plan(*recipe, m_rules, targets);
    EXPECT_TRUE(plan.ok()) << plan.error().to_string();
    Builder b(*m_fs, m_reporter, m_rules, opts);
    auto report = b.build(*recipe, *plan);
    EXPECT_TRUE(report.ok()) << report.error().to_string();
    m_last_hashed = b.file_digests().hashed_paths();
    if (out) *out = *report;
    std::vector<std::string> lines;
    std::ifstream in(log_path());
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    std::sort(lines.begin(), lines.end());
    return lines;
  }

  TempDir m_tmp{"builder-test"};
  std::unique_ptr<FileSystem> m_fs = make_real_file_system();
  Registry m_rules;
  RecordingReporter m_reporter;
  std::string m_recipe_text;
  std::vector<fs::path> m_last_hashed;
};

using Lines = std::vector<std::string>;

TEST_F(BuilderTest, FirstBuildRunsEverythingSecondNothing) {
  BuildReport r;
  EXPECT_EQ(build({"fused"}, &r), (Lines{"fuse fuse fused", "gate gate fused"}));
  ASSERT_EQ(r.targets.size(), 1u);
  EXPECT_EQ(r.targets[0].state, TargetState::kBuilt);
  EXPECT_EQ(r.exit_code(), 0);
  EXPECT_EQ(read(dir() / "build/fused/model.txt"), "q8:BASE WEIGHTS+ADAPTER DELTA mode=dequantize");
  EXPECT_EQ(build({"fused"}, &r), Lines{});
  EXPECT_EQ(r.targets[0].state, TargetState::kUpToDate);
  EXPECT_TRUE(m_last_hashed.empty()) << "a no-op build re-hashed " << m_last_hashed.size() << " files";
}

TEST_F(BuilderTest, MaterializedFilesAreReadOnlyLinks) {
  build({"fused"});
  struct stat st;
  ASSERT_EQ(::stat((dir() / "build/fused/model.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0222, 0u) << "materialized artifacts must be read-only";
  EXPECT_GE(st.st_nlink, 2u) << "materialized by copy instead of link";
}

TEST_F(BuilderTest, ChangingOneAdapterByteRerunsOnlyDownstream) {
  build({"fused", "base_only"});
  write(dir() / "lora/a.txt", "adapter delta!");
  EXPECT_EQ(build({"fused", "base_only"}), (Lines{"fuse fuse fused", "gate gate fused"}));
}

TEST_F(BuilderTest, TouchingAFileRerunsNothingAndRehashesOnlyIt) {
  build({"fused", "base_only"});
  struct timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
  ::utimensat(AT_FDCWD, (dir() / "lora/a.txt").c_str(), now, 0);
  EXPECT_EQ(build({"fused", "base_only"}), Lines{});
  ASSERT_EQ(m_last_hashed.size(), 1u);
  EXPECT_EQ(m_last_hashed[0].filename(), "a.txt");
}

TEST_F(BuilderTest, ChangingBitsRerunsTheOnePassFuseOnly) {
  build({"fused", "base_only"});
  set_recipe(6);
  // Fusion to bits is one streaming step, so new bits fuse again; the
  // quantize-only target does not depend on them.
  EXPECT_EQ(build({"fused", "base_only"}), (Lines{"fuse fuse fused", "gate gate fused"}));
  EXPECT_EQ(read(dir() / "build/fused/model.txt").substr(0, 3), "q6:");
}

TEST_F(BuilderTest, ExplainSaysWhichParameterChanged) {
  build({"fused"});
  set_recipe(6);
  auto recipe = parse_recipe_text(*m_fs, m_recipe_text, dir() / "modelbuild.yaml", m_rules);
  auto plan = make_plan(*recipe, m_rules, {"fused"});
  fs::remove(log_path());
  Builder b(*m_fs, m_reporter, m_rules, options());
  auto report = b.evaluate(*recipe, *plan);
  ASSERT_TRUE(report.ok());
  const TargetPlan& tp = plan->targets.at("fused");
  const StepResult& q = report->steps[tp.artifact->step];
  EXPECT_EQ(q.state, StepState::kStale);
  ASSERT_FALSE(q.why.empty());
  EXPECT_EQ(q.why[0], "parameter bits changed: 8 → 6");
  EXPECT_EQ(report->steps[tp.marked(kGateMark)].state, StepState::kStale);
  EXPECT_EQ(report->targets[0].state, TargetState::kStale);
  EXPECT_EQ(read(log_path()), "") << "evaluate() must not run anything";
}

TEST_F(BuilderTest, ExplainNamesTheChangedFile) {
  build({"fused"});
  write(dir() / "lora/a.txt", "adapter delta v2");
  auto recipe = parse_recipe_text(*m_fs, m_recipe_text, dir() / "modelbuild.yaml", m_rules);
  auto plan = make_plan(*recipe, m_rules, {"fused"});
  Builder b(*m_fs, m_reporter, m_rules, options());
  auto report = b.evaluate(*recipe, *plan);
  ASSERT_TRUE(report.ok());
  const StepResult& fuse = report->steps[0];
  ASSERT_EQ(fuse.why.size(), 1u);
  EXPECT_NE(fuse.why[0].find("input adapter.0 (source lora) changed: a.txt "), std::string::npos) << fuse.why[0];
}

TEST_F(BuilderTest, EarlyCutoffWhenAnUpstreamRebuildGivesIdenticalBytes) {
  build({"fused"});
  write(dir() / "base/w.txt", "BASE WEIGHTS");  // same output after upper-casing
  // The fuse reruns and yields the same bytes, so the gate is cut off.
  EXPECT_EQ(build({"fused"}), (Lines{"fuse fuse fused"}));
}

// Building `target` runs its fuse step only: the retention check fails
// with `failure` before any gate runs, and nothing is materialized.
void BuilderTest::expect_retention_failure(const std::string& target, const std::string& failure) {
  BuildReport r;
  EXPECT_EQ(build({target}, &r), Lines{"fuse fuse " + target});
  ASSERT_EQ(r.targets[0].state, TargetState::kFailed);
  EXPECT_EQ(r.exit_code(), 3);
  ASSERT_FALSE(r.targets[0].failures.empty());
  EXPECT_NE(r.targets[0].failures[0].find(failure), std::string::npos) << r.targets[0].failures[0];
  EXPECT_FALSE(fs::exists(dir() / "build" / target));
}

TEST_F(BuilderTest, RetentionCheckFailsBeforeTheGateRuns) {
  expect_retention_failure("inplace", "delta retention 0.05 is below the required 0.9");
}

TEST_F(BuilderTest, RetentionCheckOfAFusionToBitsFailsBeforeTheGateRuns) {
  set_recipe(8, R"(  strict:
    base: base
    adapters: [lora]
    bits: 4
    min_delta_retention: 0.98
    gate: {suite: suite})");
  // The one-pass fuse step reports 0.97 * 4/8: below 0.98, so no gate runs.
  expect_retention_failure("strict", "delta retention 0.485 is below the required 0.98");
}

TEST_F(BuilderTest, FailedGateIsCachedAndNotMaterialized) {
  BuildReport r;
  EXPECT_EQ(build({"plain"}, &r), Lines{"gate gate plain"});
  EXPECT_EQ(r.targets[0].state, TargetState::kFailed);
  EXPECT_EQ(r.exit_code(), 3);
  // The verdict is cached: the same artifact is never evaluated twice.
  EXPECT_EQ(build({"plain"}, &r), Lines{});
  EXPECT_EQ(r.targets[0].state, TargetState::kFailed);
  BuildOptions regate = options();
  regate.regate = true;
  EXPECT_EQ(build({"plain"}, &r, regate), Lines{"gate gate plain"});
}

TEST_F(BuilderTest, KeepGoingBuildsWhatDoesNotDependOnAFailure) {
  set_recipe(8, "  broken: {command: \"false\", outputs: [x]}\n  fine: {command: \"true\", outputs: [x]}\n");
  BuildReport r;
  BuildOptions o = options();
  o.jobs = 1;
  o.keep_going = true;
  build({"broken", "fine"}, &r, o);
  EXPECT_EQ(r.targets[0].state, TargetState::kFailed);
  EXPECT_EQ(r.targets[1].state, TargetState::kBuilt);
  EXPECT_EQ(r.exit_code(), 1);
}

TEST_F(BuilderTest, AKilledStepLeavesNothingAndTheNextRunIsCorrect) {
  write(dir() / "crash", "");
  pid_t pid = ::fork();
  if (pid == 0) {
    build({"fused"});
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the fake fuse should have killed its process";
  fs::remove(dir() / "crash");
  BuildReport r;
  EXPECT_EQ(build({"fused"}, &r), (Lines{"fuse fuse fused", "gate gate fused"}));
  EXPECT_EQ(r.targets[0].state, TargetState::kBuilt);
  EXPECT_FALSE(fs::exists(dir() / "build/fused/partial.bin"));
  EXPECT_EQ(read(dir() / "build/fused/model.txt"), "q8:BASE WEIGHTS+ADAPTER DELTA mode=dequantize");
}

TEST_F(BuilderTest, ConcurrentBuildsOfOneTargetExecuteOnce) {
  write(dir() / "slow", "");
  fs::remove(log_path());
  std::vector<pid_t> kids;
  for (int k = 0; k < 2; ++k) {
    pid_t pid = ::fork();
    if (pid == 0) {
      auto recipe = parse_recipe_text(*m_fs, m_recipe_text, dir() / "modelbuild.yaml", m_rules);
      auto plan = make_plan(*recipe, m_rules, {"fused"});
      NullReporter quiet;
      Builder b(*m_fs, quiet, m_rules, options());
      auto report = b.build(*recipe, *plan);
      ::_exit(report.ok() && report->ok() ? 0 : 1);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::vector<std::string> lines;
  std::ifstream in(log_path());
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, (Lines{"fuse fuse fused", "gate gate fused"}));
}

// bits: auto: candidates from the smallest; those below the retention
// minimum are rejected without a gate; the first that passes is the
// artifact; the ones after it never run; a rebuild runs nothing.
TEST_F(BuilderTest, BitsAutoKeepsTheSmallestCandidateThatPasses) {
  set_recipe(8, R"(  searched:
    base: base
    adapters: [lora]
    bits: auto
    min_delta_retention: 0.55
    gate: {suite: suite, min_accuracy: 1.0}
)");
  BuildReport r;
  EXPECT_EQ(build({"searched"}, &r),
            (Lines{"fuse fuse 3bit-gs32 searched", "fuse fuse 4bit-gs32 searched", "fuse fuse 4bit-gs64 searched",
                   "fuse fuse 5bit-gs64 searched", "fuse fuse 6bit-gs64 searched", "gate gate 5bit-gs64 searched",
                   "gate gate 6bit-gs64 searched"}));
  ASSERT_EQ(r.targets.size(), 1u);
  const TargetResult& t = r.targets[0];
  EXPECT_EQ(t.state, TargetState::kBuilt) << (t.failures.empty() ? "" : t.failures[0]);
  EXPECT_EQ(t.winner, 4);
  ASSERT_EQ(t.candidates.size(), 6u);
  EXPECT_EQ(t.candidates[0].verdict, "rejected");
  EXPECT_NE(t.candidates[0].reasons[0].find("delta retention"), std::string::npos);
  EXPECT_NE(t.candidates[3].reasons[0].find("accuracy 60%"), std::string::npos);
  EXPECT_EQ(t.candidates[4].verdict, "passed");
  EXPECT_EQ(t.candidates[5].verdict, "untried");
  EXPECT_EQ(read(dir() / "build/searched/model.txt").substr(0, 3), "q6:");
  const auto report = nlohmann::json::parse(read(dir() / "build/searched.report.json"));
  ASSERT_EQ(report["search"].size(), 6u);
  EXPECT_TRUE(report["search"][4]["winner"].get<bool>());
  EXPECT_GT(report["search"][4]["bytes"].get<int>(), 0);
  EXPECT_DOUBLE_EQ(report["search"][4]["checks"]["accuracy"].get<double>(), 1.0);
  // Cached verdicts: the search re-decides without running anything.
  EXPECT_EQ(build({"searched"}, &r), Lines{});
  EXPECT_EQ(r.targets[0].winner, 4);
  // A candidate that passes nothing fails the target with exit status 3.
  set_recipe(8, R"(  searched:
    base: base
    adapters: [lora]
    bits: auto
    candidates: [[3, 32], [4, 64]]
    gate: {suite: suite, min_accuracy: 1.0}
)");
  build({"searched"}, &r);
  EXPECT_EQ(r.targets[0].state, TargetState::kFailed);
  EXPECT_EQ(r.exit_code(), 3);
  EXPECT_FALSE(fs::exists(dir() / "build/searched"));
}

TEST_F(BuilderTest, DryRunRunsNothing) {
  BuildOptions o = options();
  o.dry_run = true;
  BuildReport r;
  EXPECT_EQ(build({"fused"}, &r, o), Lines{});
  EXPECT_EQ(r.targets[0].state, TargetState::kStale);
  EXPECT_FALSE(fs::exists(dir() / "build/fused"));
}

// Counts the files being hashed at once. Each map of a .bin file waits (up
// to 5 s) for a second one to start, so a builder that hashes its sources
// one after another is caught without relying on timing.
class RendezvousFileSystem : public MemoryFileSystem {
 public:
  Result<std::unique_ptr<ReadOnlyMapping>> map_file(const fs::path& path) const override {
    if (path.extension() == ".bin") {
      std::unique_lock<std::mutex> lock(m_mu);
      ++m_active;
      m_most = std::max(m_most, m_active);
      m_cv.notify_all();
      m_cv.wait_for(lock, std::chrono::seconds(5), [&] { return m_most >= 2; });
      --m_active;
    }
    return MemoryFileSystem::map_file(path);
  }
  int most_at_once() const {
    std::lock_guard<std::mutex> lock(m_mu);
    return m_most;
  }

 private:
  mutable std::mutex m_mu;
  mutable std::condition_variable m_cv;
  mutable int m_active = 0;
  mutable int m_most = 0;
};

// A command step that only writes a marker; its inputs are what matters.
class TouchRule : public Rule {
 public:
  std::string_view kind() const override { return "command"; }
  int algorithm_version() const override { return 1; }
  Status check_params(const nlohmann::json&) const override { return {}; }
  Status run(StepContext& ctx) const override { return write_file_atomic(ctx.fs, ctx.output_dir / "out.txt", "ok"); }
};

TEST(BuilderSources, OneStepsSingleFileSourcesAreHashedInParallel) {
  RendezvousFileSystem fs;
  Registry rules;
  rules.add(std::make_unique<CommandTargetKind>());
  rules.add(std::make_unique<TouchRule>());
  fs.add_file("/p/a.bin", std::string(1000, 'a'));
  fs.add_file("/p/b.bin", std::string(1000, 'b'));
  auto recipe = parse_recipe_text(fs, R"(
sources: {a: a.bin, b: b.bin}
targets:
  both:
    command: "cat {a} {b}"
    inputs: [a, b]
    outputs: [out.txt]
)",
                                  "/p/modelbuild.yaml", rules);
  ASSERT_TRUE(recipe.ok()) << recipe.error().to_string();
  auto plan = make_plan(*recipe, rules, {"both"});
  ASSERT_TRUE(plan.ok()) << plan.error().to_string();
  NullReporter quiet;
  BuildOptions o;
  o.cache_dir = "/p/.modelbuild";
  o.state_dir = "/p/.modelbuild/state";
  o.build_dir = "/p/build";
  o.jobs = 1;  // one step: any parallelism comes from hashing its sources
  o.threads_per_step = 2;
  Builder b(fs, quiet, rules, o);
  auto report = b.build(*recipe, *plan);
  ASSERT_TRUE(report.ok()) << report.error().to_string();
  EXPECT_TRUE(report->ok());
  EXPECT_EQ(fs.most_at_once(), 2);
}

}  // namespace
}  // namespace mb
