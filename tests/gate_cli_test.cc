// The gate through the real binary on the bundled example: verdict caching
// (reuse, --regate, a changed suite, a changed threshold) and a failing gate.
#include <nlohmann/json.hpp>
#include <regex>

#include "tests/e2e_support.h"

namespace mb::e2e {
namespace {

// The step events of a `--json` run: step name -> the kind of event it got.
std::map<std::string, std::vector<std::string>> step_events(const std::string& out) {
  std::map<std::string, std::vector<std::string>> events;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("step")) continue;
    events[j["step"].get<std::string>()].push_back(j.value("event", ""));
  }
  return events;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

void replace_in_file(const fs::path& p, const std::string& from, const std::string& to) {
  std::string text = read_file(p);
  const size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << from << " not in " << p;
  text.replace(at, from.size(), to);
  write_file(p, text);
}

class GateCli : public ::testing::Test {
 protected:
  void SetUp() override { copy_tiny_example(tmp.path()); }
  TempDir tmp{"gate-cli"};
};

TEST_F(GateCli, ACachedVerdictIsReusedAndRegateRunsItAgain) {
  auto first = modelbuild(tmp.path(), {"fused_8bit", "--json"});
  ASSERT_EQ(first.code, 0) << first.output;
  EXPECT_TRUE(has(step_events(first.out)["gate fused_8bit"], "step_started"));

  auto second = modelbuild(tmp.path(), {"fused_8bit", "--json"});
  ASSERT_EQ(second.code, 0) << second.output;
  auto events = step_events(second.out)["gate fused_8bit"];
  EXPECT_TRUE(has(events, "step_cached"));
  EXPECT_FALSE(has(events, "step_started")) << second.out;

  auto regate = modelbuild(tmp.path(), {"fused_8bit", "--json", "--regate"});
  ASSERT_EQ(regate.code, 0) << regate.output;
  auto re = step_events(regate.out);
  EXPECT_TRUE(has(re["gate fused_8bit"], "step_started"));
  // --regate re-asks the suite only: the artifact itself is still cached.
  EXPECT_FALSE(has(re["quantize fused_8bit"], "step_started"));
}

TEST_F(GateCli, AChangedSuiteReEvaluates) {
  ASSERT_EQ(modelbuild(tmp.path(), {"fused_8bit"}).code, 0);
  // One more direct question: same model, different suite.
  replace_in_file(tmp.path() / "suite.yaml", "cases:\n",
                  "cases:\n  - {prompt: \"What is a service locator?\", expect: direct}\n");
  auto run = modelbuild(tmp.path(), {"fused_8bit", "--json"});
  auto events = step_events(run.out);
  EXPECT_TRUE(has(events["gate fused_8bit"], "step_started")) << run.output;
  EXPECT_FALSE(has(events["quantize fused_8bit"], "step_started"));
  auto report = nlohmann::json::parse(read_file(tmp.path() / "build" / "fused_8bit.report.json"), nullptr, false);
  EXPECT_NE(report.dump().find("What is a service locator?"), std::string::npos);
}

TEST_F(GateCli, ChangingMinAccuracyRechecksWithoutRerunningTheSuite) {
  // fused_4bit fails the default 100% gate at 60%...
  auto failing = modelbuild(tmp.path(), {"fused_4bit"});
  ASSERT_EQ(failing.code, 3) << failing.output;
  // ...and passes a 60% one, from the cached verdict.
  replace_in_file(tmp.path() / "modelbuild.yaml", "gate: {suite: suite, min_accuracy: 1.0}",
                  "gate: {suite: suite, min_accuracy: 0.6}");
  auto relaxed = modelbuild(tmp.path(), {"fused_4bit", "--json"});
  EXPECT_EQ(relaxed.code, 0) << relaxed.output;
  auto events = step_events(relaxed.out)["gate fused_4bit"];
  EXPECT_TRUE(has(events, "step_cached")) << relaxed.out;
  EXPECT_FALSE(has(events, "step_started"));
  EXPECT_TRUE(fs::exists(tmp.path() / "build" / "fused_4bit"));
}

TEST_F(GateCli, AFailingGateExitsThreeWithThePerCaseReportAndIsNotMaterialized) {
  auto run = modelbuild(tmp.path(), {"fused_4bit"});
  EXPECT_EQ(run.code, 3) << run.output;
  EXPECT_NE(run.output.find("accuracy 60% is below the required 100%"), std::string::npos) << run.output;
  // prompt, expected, got, and the first line of the response, per case.
  EXPECT_TRUE(std::regex_search(run.output,
                                std::regex("FAIL +\"Find all classes that inherit from Protocol\" +expected tool +got "
                                           "direct \\| \\S")))
      << run.output;
  EXPECT_TRUE(std::regex_search(run.output, std::regex("ok +\"What is dependency injection\\?\" +expected direct")));
  EXPECT_FALSE(fs::exists(tmp.path() / "build" / "fused_4bit"));
}

}  // namespace
}  // namespace mb::e2e
