// `bits: auto` end to end on the bundled example: the search picks the
// smallest candidate the gate passes (whatever the gate measures), a rebuild
// runs nothing, a changed suite re-runs only gates, and min_delta_retention
// rejects candidates without inference.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/e2e_support.h"

namespace mb::e2e {
namespace {

class BitsAutoTest : public ::testing::Test {
 protected:
  void SetUp() override { copy_tiny_example(dir()); }
  fs::path dir() const { return m_tmp.path(); }
  nlohmann::json search() const {
    return nlohmann::json::parse(read_file(dir() / "build" / "fused_auto.report.json"))["search"];
  }
  static size_t count(const std::string& text, const std::string& needle) {
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
    return n;
  }
  void append_to_target(const std::string& lines) {
    std::string recipe = read_file(dir() / "modelbuild.yaml");
    write_file(dir() / "modelbuild.yaml", recipe + lines);
  }
  TempDir m_tmp{"bits-auto-test"};
};

TEST_F(BitsAutoTest, PicksTheSmallestCandidateThatPassesAndARebuildRunsNothing) {
  CliRun r = modelbuild(dir(), {"fused_auto"});
  ASSERT_EQ(r.code, 0) << r.output;
  nlohmann::json s = search();
  ASSERT_EQ(s.size(), 6u);  // the default candidates
  int winner = -1;
  int64_t last_bytes = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto& c = s[i];
    if (c["winner"].get<bool>()) winner = static_cast<int>(i);
    if (winner < 0 || static_cast<int>(i) == winner) {
      // Tried in order of size on disk, each with a measured accuracy.
      ASSERT_TRUE(c.contains("bytes")) << c;
      EXPECT_GT(c["bytes"].get<int64_t>(), last_bytes) << c;
      last_bytes = c["bytes"].get<int64_t>();
      const double accuracy = c["checks"]["accuracy"].get<double>();
      EXPECT_EQ(c["verdict"], static_cast<int>(i) == winner ? "passed" : "rejected") << c;
      EXPECT_EQ(accuracy == 1.0, static_cast<int>(i) == winner) << c;
    } else {
      EXPECT_EQ(c["verdict"], "untried") << c;  // larger than the winner: never built
    }
  }
  ASSERT_GE(winner, 0) << s;
  const std::string name = s[static_cast<size_t>(winner)]["candidate"];
  EXPECT_NE(r.output.find("chose " + name), std::string::npos) << r.output;
  // The artifact is the winner's model, and the lock records the winner.
  EXPECT_TRUE(fs::exists(dir() / "build" / "fused_auto" / "model.safetensors"));
  auto lock = nlohmann::json::parse(read_file(dir() / "modelbuild.lock"));
  EXPECT_EQ(lock["targets"]["fused_auto"]["search"]["winner"], name);
  EXPECT_TRUE(lock["targets"]["fused_auto"]["gate"]["passed"].get<bool>());

  CliRun again = modelbuild(dir(), {"fused_auto"});
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_EQ(count(again.output, "] started"), 0u) << again.output;
  EXPECT_EQ(search(), s);
  CliRun explain = modelbuild(dir(), {"explain", "fused_auto"});
  EXPECT_NE(explain.output.find("candidate " + name + ": passed"), std::string::npos) << explain.output;
}

TEST_F(BitsAutoTest, AChangedSuiteReRunsTheGatesButNoFuse) {
  ASSERT_EQ(modelbuild(dir(), {"fused_auto"}).code, 0);
  write_file(dir() / "suite.yaml", read_file(dir() / "suite.yaml") + "# edited\n");
  CliRun r = modelbuild(dir(), {"fused_auto"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(count(r.output, "[fuse "), 0u) << r.output;
  EXPECT_GT(count(r.output, "[gate "), 0u) << r.output;
}

TEST_F(BitsAutoTest, MinDeltaRetentionRejectsCandidatesBeforeInference) {
  // 4-bit and below keep none of this adapter's weight change (the fuse
  // reports negative retention), so 0.5 must reject them without a gate run.
  append_to_target("    min_delta_retention: 0.5\n");
  CliRun r = modelbuild(dir(), {"fused_auto"});
  ASSERT_EQ(r.code, 0) << r.output;
  nlohmann::json s = search();
  bool any_rejected_early = false;
  for (const auto& c : s) {
    if (c["verdict"] != "rejected") continue;
    const std::string name = c["candidate"];  // "3-bit gs32"
    const std::string step = name.substr(0, name.find('-')) + "bit-gs" + name.substr(name.find("gs") + 2);
    if (r.output.find("[gate " + step + " fused_auto] started") == std::string::npos) {
      any_rejected_early = true;
      EXPECT_NE(c["reasons"].dump().find("retention"), std::string::npos) << c;
    }
  }
  EXPECT_TRUE(any_rejected_early) << r.output;
}

// gguf_type: auto on the example: GGUF types tried in nominal size order,
// the first the gate passes on its own bytes is build/gguf_auto/model.gguf,
// the same bytes as a target fixed to that type; a rebuild runs nothing.
TEST_F(BitsAutoTest, GgufTypeAutoPicksTheFirstTypeThatPassesOnItsOwnBytes) {
  append_to_target(R"(  gguf_auto:
    base: base_4bit
    adapters: [tools_lora]
    dtype: float16
    format: gguf
    gguf_type: auto
)");
  CliRun r = modelbuild(dir(), {"gguf_auto"});
  ASSERT_EQ(r.code, 0) << r.output;
  const nlohmann::json s = nlohmann::json::parse(read_file(dir() / "build" / "gguf_auto.report.json"))["search"];
  ASSERT_EQ(s.size(), 5u) << s;
  const std::vector<std::string> order = {"Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"};
  int winner = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto& c = s[i];
    EXPECT_EQ(c["candidate"], order[i]) << s;
    if (c["winner"].get<bool>()) winner = static_cast<int>(i);
    if (winner >= 0 && static_cast<int>(i) != winner) {
      EXPECT_EQ(c["verdict"], "untried") << c;
      continue;
    }
    ASSERT_TRUE(c.contains("bytes")) << c;
    const double accuracy = c["checks"]["accuracy"].get<double>();
    EXPECT_EQ(accuracy == 1.0, static_cast<int>(i) == winner) << c;
  }
  ASSERT_GE(winner, 0) << s;
  const std::string name = s[static_cast<size_t>(winner)]["candidate"];
  EXPECT_NE(r.output.find("chose " + name), std::string::npos) << r.output;
  auto lock = nlohmann::json::parse(read_file(dir() / "modelbuild.lock"));
  EXPECT_EQ(lock["targets"]["gguf_auto"]["search"]["winner"], name);
  // The winner is the very export a fixed-type target makes.
  append_to_target(
      fmt::format("  fixed:\n    base: base_4bit\n    adapters: [tools_lora]\n    dtype: float16\n"
                  "    format: gguf\n    gguf_type: {}\n",
                  name));
  CliRun fixed = modelbuild(dir(), {"fixed"});
  ASSERT_EQ(fixed.code, 0) << fixed.output;
  EXPECT_EQ(count(fixed.output, "] started"), 0u) << "shared with the search: " << fixed.output;
  EXPECT_EQ(read_file(dir() / "build" / "fixed" / "model.gguf"),
            read_file(dir() / "build" / "gguf_auto" / "model.gguf"));
  CliRun again = modelbuild(dir(), {"gguf_auto"});
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_EQ(count(again.output, "] started"), 0u) << again.output;

  // Each export measures the delta retention of its own bytes, so a minimum
  // rejects types before their gate runs (at 4 and 5 bits this adapter's
  // change is mostly lost; F16 keeps it).
  append_to_target(R"(  gguf_strict:
    base: base_4bit
    adapters: [tools_lora]
    dtype: float16
    format: gguf
    gguf_type: auto
    candidates: [Q8_0, F16, Q4_0]
    min_delta_retention: 0.5
)");
  CliRun strict = modelbuild(dir(), {"gguf_strict"});
  ASSERT_EQ(strict.code, 0) << strict.output;
  const nlohmann::json ss = nlohmann::json::parse(read_file(dir() / "build" / "gguf_strict.report.json"))["search"];
  ASSERT_EQ(ss.size(), 3u);
  EXPECT_EQ(ss[0]["candidate"], "Q4_0");
  EXPECT_EQ(ss[2]["candidate"], "F16");
  bool rejected_early = false;
  for (const auto& c : ss) {
    if (c["verdict"] != "rejected") continue;
    const std::string type = c["candidate"];
    if (strict.output.find("[gate " + type + " gguf_strict] started") != std::string::npos) continue;
    rejected_early = true;
    EXPECT_LT(c["checks"]["delta retention"].get<double>(), 0.5) << c;
  }
  EXPECT_TRUE(rejected_early) << strict.output;
}

// A search whose every candidate fails its gate is a failed check (exit 3),
// not bad input: every step ran and is cached, the lock says failed with no
// winner and no outputs, and nothing is materialized.
TEST_F(BitsAutoTest, ASearchWithNoPassingCandidateFailsItsChecks) {
  append_to_target("    candidates: [[3, 32]]\n");  // 80% on the example's suite
  CliRun r = modelbuild(dir(), {"fused_auto"});
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find("no candidate passed its checks"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("has no artifact"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir() / "build" / "fused_auto"));
  const auto lock = nlohmann::json::parse(read_file(dir() / "modelbuild.lock"));
  const auto& t = lock["targets"]["fused_auto"];
  EXPECT_EQ(t["state"], "failed") << t;
  EXPECT_TRUE(t["search"]["winner"].is_null()) << t;
  EXPECT_TRUE(t["outputs"].empty()) << t;
  CliRun again = modelbuild(dir(), {"fused_auto"});
  EXPECT_EQ(again.code, 3) << again.output;
  EXPECT_EQ(count(again.output, "] started"), 0u) << "the verdicts are cached: " << again.output;
}

TEST_F(BitsAutoTest, BitsAutoWithoutAGateIsBadInputAndNothingRuns) {
  append_to_target("    gate: null\n");
  CliRun r = modelbuild(dir(), {"fused_auto"});
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("modelbuild.yaml:"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("built in"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir() / ".modelbuild" / "ac"));
}

}  // namespace
}  // namespace mb::e2e
