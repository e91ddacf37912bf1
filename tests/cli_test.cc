// The CLI end to end on command targets: exit statuses, messages, no-op
// builds, status/explain/graph, cache verify and gc.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/e2e_support.h"

namespace mb::e2e {
namespace {

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file(dir() / "in.txt", "hello\n");
    write_file(dir() / "modelbuild.yaml", R"(
sources: {src: in.txt}
targets:
  upper:
    command: "tr a-z A-Z < {src} > {out}/up.txt"
    inputs: [src]
    outputs: [up.txt]
  twice:
    command: ["/bin/sh", "-c", "cat {up}/up.txt {up}/up.txt > {out}/twice.txt"]
    inputs: {up: upper}
    outputs: [twice.txt]
)");
  }
  fs::path dir() const { return m_tmp.path(); }
  TempDir m_tmp{"cli-test"};
};

TEST_F(CliTest, BuildsThenDoesNothing) {
  CliRun first = modelbuild(dir(), {"twice"});
  ASSERT_EQ(first.code, 0) << first.output;
  EXPECT_EQ(read_file(dir() / "build/twice/twice.txt"), "HELLO\nHELLO\n");
  EXPECT_NE(first.output.find("twice: built"), std::string::npos) << first.output;
  CliRun second = modelbuild(dir(), {"twice"});
  ASSERT_EQ(second.code, 0) << second.output;
  EXPECT_NE(second.output.find("twice: up to date"), std::string::npos) << second.output;
  EXPECT_EQ(second.output.find("started"), std::string::npos) << second.output;
}

TEST_F(CliTest, DashCComesBeforeTheCommandAndRelativePathsMeanTheSameAsAfterCd) {
  TempDir elsewhere{"cli-test-elsewhere"};
  CliRun built = modelbuild(elsewhere.path(), {"-C", dir().string(), "build", "upper"});
  ASSERT_EQ(built.code, 0) << built.output;
  EXPECT_TRUE(fs::exists(dir() / "build/upper/up.txt"));
  // The command after -C is still a command, not a target named "graph".
  CliRun graph = modelbuild(elsewhere.path(), {"-C", dir().string(), "graph", "--dot"});
  ASSERT_EQ(graph.code, 0) << graph.output;
  EXPECT_NE(graph.out.find("digraph"), std::string::npos) << graph.out;
  // A relative --cache is inside DIR, as after `cd DIR`.
  CliRun cached = modelbuild(elsewhere.path(), {"-C", dir().string(), "--cache", "other-cache", "upper"});
  ASSERT_EQ(cached.code, 0) << cached.output;
  EXPECT_TRUE(fs::exists(dir() / "other-cache"));
  EXPECT_FALSE(fs::exists(elsewhere.path() / "other-cache"));
  CliRun missing = modelbuild(elsewhere.path(), {"-C", (dir() / "nope").string(), "status"});
  EXPECT_EQ(missing.code, 2) << missing.output;
  EXPECT_NE(missing.output.find("nope"), std::string::npos) << missing.output;
}

TEST_F(CliTest, BadRecipesExitTwoWithAPosition) {
  write_file(dir() / "modelbuild.yaml", "targets:\n  t:\n    comand: [echo]\n    outputs: [x]\n");
  CliRun r = modelbuild(dir(), {"t"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("modelbuild.yaml:3:5"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("did you mean 'command'"), std::string::npos) << r.output;
}

TEST_F(CliTest, MissingRecipe) {
  CliRun r = modelbuild(dir(), {"-f", "nothere.yaml"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("nothere.yaml"), std::string::npos) << r.output;
}

TEST_F(CliTest, UnknownTargetSuggests) {
  CliRun r = modelbuild(dir(), {"uper"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("did you mean 'upper'"), std::string::npos) << r.output;
}

TEST_F(CliTest, FailingCommandExitsOneAndShowsItsOutput) {
  write_file(dir() / "modelbuild.yaml", "targets:\n  bad:\n    command: \"echo oops >&2; exit 7\"\n    outputs: [x]\n");
  CliRun r = modelbuild(dir(), {"bad"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("exited with status 7"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("oops"), std::string::npos) << r.output;
}

TEST_F(CliTest, StatusExplainAndDryRun) {
  ASSERT_EQ(modelbuild(dir(), {"twice"}).code, 0);
  CliRun status = modelbuild(dir(), {"status"});
  EXPECT_NE(status.out.find("twice"), std::string::npos);
  EXPECT_NE(status.out.find("up to date"), std::string::npos) << status.out;
  write_file(dir() / "in.txt", "changed\n");
  status = modelbuild(dir(), {"status"});
  EXPECT_NE(status.out.find("stale"), std::string::npos) << status.out;
  CliRun explain = modelbuild(dir(), {"explain", "twice"});
  EXPECT_NE(explain.out.find("input src (source src) changed: in.txt"), std::string::npos) << explain.out;
  EXPECT_NE(explain.out.find("command twice: stale"), std::string::npos) << explain.out;
  CliRun dry = modelbuild(dir(), {"-n", "twice"});
  EXPECT_EQ(dry.code, 0);
  EXPECT_EQ(read_file(dir() / "build/twice/twice.txt"), "HELLO\nHELLO\n") << "a dry run must not build";
}

TEST_F(CliTest, ExplainJsonPrintsOneJsonDocument) {
  ASSERT_EQ(modelbuild(dir(), {"twice"}).code, 0);
  write_file(dir() / "in.txt", "changed\n");
  CliRun explain = modelbuild(dir(), {"explain", "--json", "twice"});
  ASSERT_EQ(explain.code, 0) << explain.output;
  auto j = nlohmann::json::parse(explain.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << explain.out;
  ASSERT_EQ(j["stale"].size(), 2u) << j.dump(2);
  EXPECT_EQ(j["stale"][0]["kind"], "command");
  EXPECT_NE(j["stale"].dump().find("input src (source src) changed: in.txt"), std::string::npos) << j.dump(2);
}

TEST_F(CliTest, JobsBelowOneAreBadInputAndNothingRuns) {
  for (const char* j : {"0", "-3", "two"}) {
    CliRun r = modelbuild(dir(), {"-j", j, "twice"});
    EXPECT_EQ(r.code, 2) << j << ": " << r.output;
    EXPECT_NE(r.output.find("at least 1"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(dir() / "build" / "twice"));
  }
  EXPECT_EQ(modelbuild(dir(), {"-j", "1", "twice"}).code, 0);
}

TEST_F(CliTest, GraphAsTextAndDot) {
  CliRun text = modelbuild(dir(), {"graph"});
  EXPECT_EQ(text.code, 0);
  EXPECT_NE(text.out.find("#0 command [command upper]"), std::string::npos) << text.out;
  CliRun dot = modelbuild(dir(), {"graph", "--dot", "twice"});
  EXPECT_NE(dot.out.find("digraph modelbuild"), std::string::npos);
  EXPECT_NE(dot.out.find("s0 -> s1"), std::string::npos) << dot.out;
}

TEST_F(CliTest, JsonEventsAreJsonLines) {
  CliRun r = modelbuild(dir(), {"--json", "upper"});
  ASSERT_EQ(r.code, 0) << r.output;
  int events = 0;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    EXPECT_TRUE(j.contains("event"));
    ++events;
  }
  EXPECT_GE(events, 2);
}

TEST_F(CliTest, CacheVerifyRemovesACorruptBlobAndTheNextBuildRepairs) {
  ASSERT_EQ(modelbuild(dir(), {"upper"}).code, 0);
  // Corrupt the one blob in the store.
  fs::path blob;
  for (auto& e : fs::recursive_directory_iterator(dir() / ".modelbuild/cas"))
    if (e.is_regular_file()) blob = e.path();
  ASSERT_FALSE(blob.empty());
  fs::permissions(blob, fs::perms::owner_write, fs::perm_options::add);
  {
    std::fstream f(blob, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f.put('X');
  }
  CliRun verify = modelbuild(dir(), {"cache", "verify"});
  EXPECT_EQ(verify.code, 1) << verify.output;
  EXPECT_NE(verify.output.find("1 corrupt"), std::string::npos) << verify.output;
  EXPECT_FALSE(fs::exists(blob));
  fs::remove_all(dir() / "build");
  CliRun rebuild = modelbuild(dir(), {"upper"});
  ASSERT_EQ(rebuild.code, 0) << rebuild.output;
  EXPECT_EQ(read_file(dir() / "build/upper/up.txt"), "HELLO\n");
}

TEST_F(CliTest, GcKeepsWhatTheRecipePointsAt) {
  ASSERT_EQ(modelbuild(dir(), {"twice"}).code, 0);
  write_file(dir() / "in.txt", "second\n");
  ASSERT_EQ(modelbuild(dir(), {"twice"}).code, 0);  // the first results are now unreferenced
  CliRun gc = modelbuild(dir(), {"gc"});
  ASSERT_EQ(gc.code, 0) << gc.output;
  EXPECT_NE(gc.output.find("removed 2 entries"), std::string::npos) << gc.output;
  CliRun again = modelbuild(dir(), {"twice"});
  EXPECT_NE(again.output.find("up to date"), std::string::npos) << again.output;
  EXPECT_EQ(again.output.find("started"), std::string::npos) << again.output;
}

}  // namespace
}  // namespace mb::e2e
