// Fidelity end to end on the bundled example: the KL divergence of each
// artifact against the base with the adapter at run time orders them the
// way their bits do, one reference serves every target, a threshold change
// re-runs nothing, and bits: auto rejects on the fidelity thresholds before
// its gate runs. Every figure asserted is the one the build measures.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/e2e_support.h"

namespace mb::e2e {
namespace {

class FidelityCliTest : public ::testing::Test {
 protected:
  void SetUp() override { copy_tiny_example(dir()); }
  fs::path dir() const { return m_tmp.path(); }
  // Replaces the example's default gate.
  void set_default_gate(const std::string& gate) {
    std::string recipe = read_file(dir() / "modelbuild.yaml");
    const std::string old = "  gate: " + m_gate + "\n";
    const size_t at = recipe.find(old);
    ASSERT_NE(at, std::string::npos) << recipe;
    write_file(dir() / "modelbuild.yaml", recipe.replace(at, old.size(), "  gate: " + gate + "\n"));
    m_gate = gate;
  }
  nlohmann::json report(const std::string& target) const {
    return nlohmann::json::parse(read_file(dir() / "build" / (target + ".report.json")));
  }
  // The target's fidelity step report.
  nlohmann::json fidelity(const std::string& target) const {
    const nlohmann::json r = report(target);  // not a temporary: the loop reads into it
    for (const auto& s : r["steps"])
      if (s["kind"] == "fidelity") return s["report"];
    ADD_FAILURE() << target << " has no fidelity step";
    return {};
  }
  static size_t count(const std::string& text, const std::string& needle) {
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
    return n;
  }
  // Steps of `kind` that started ("[fidelity 4bit-gs64 fused_auto] started").
  static size_t started(const std::string& text, const std::string& kind) {
    size_t n = 0;
    for (size_t at = text.find("[" + kind + " "); at != std::string::npos; at = text.find("[" + kind + " ", at + 1)) {
      const size_t close = text.find(']', at);
      n += close != std::string::npos && text.compare(close, 9, "] started") == 0;
    }
    return n;
  }
  TempDir m_tmp{"fidelity-cli-test"};
  std::string m_gate = "{suite: suite, min_accuracy: 1.0}";  // the example's
};

TEST_F(FidelityCliTest, KlOrdersTheExamplesArtifactsByTheirBits) {
  // Every gate passes on accuracy, so every target reports; KL is measured.
  set_default_gate("{suite: suite, min_accuracy: 0.0, max_mean_kl: 10}");
  const std::vector<std::string> targets = {"adapter", "fused_f16", "fused_8bit", "fused_6bit", "fused_4bit"};
  std::vector<std::string> args = targets;
  CliRun r = modelbuild(dir(), args);
  ASSERT_EQ(r.code, 0) << r.output;
  // One reference (base + adapter at run time, on the suite) for all five.
  EXPECT_EQ(started(r.output, "reference"), 1u) << r.output;
  EXPECT_EQ(started(r.output, "fidelity"), targets.size()) << r.output;
  std::map<std::string, double> kl, top1;
  for (const std::string& t : targets) {
    const nlohmann::json f = fidelity(t);
    kl[t] = f["mean_kl"].get<double>();
    top1[t] = f["top1_agreement"].get<double>();
    EXPECT_EQ(f["cases"].size(), 5u) << t;
    EXPECT_GE(f["max_kl"].get<double>(), kl[t]) << t;
    EXPECT_GT(f["positions"].get<int>(), 5) << t;
  }
  // The reference against itself is exactly 0; the float fusion within
  // rounding of it; then KL grows as the bits shrink, and fusing into the
  // base's own 4 bits (the trap) is far above 8 bits.
  EXPECT_EQ(kl["adapter"], 0.0);
  EXPECT_EQ(top1["adapter"], 1.0);
  EXPECT_LT(kl["fused_f16"], 1e-6);
  EXPECT_LT(kl["fused_f16"], kl["fused_8bit"]);
  EXPECT_LT(kl["fused_8bit"], kl["fused_6bit"]);
  EXPECT_LT(kl["fused_6bit"], kl["fused_4bit"]);
  EXPECT_GT(kl["fused_4bit"], 100 * kl["fused_8bit"]);
  EXPECT_LE(top1["fused_4bit"], top1["fused_8bit"]);
  std::cout << "mean KL: f16 " << kl["fused_f16"] << ", 8-bit " << kl["fused_8bit"] << ", 6-bit " << kl["fused_6bit"]
            << ", 4-bit in place " << kl["fused_4bit"] << "\n";

  // Another threshold re-runs nothing: it is a check on the cached figures.
  set_default_gate("{suite: suite, min_accuracy: 0.0, max_mean_kl: 5}");
  CliRun again = modelbuild(dir(), args);
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_EQ(count(again.output, "] started"), 0u) << again.output;
  // And a threshold below what 4-bit measures fails that target alone.
  set_default_gate(fmt::format("{{suite: suite, min_accuracy: 0.0, max_mean_kl: {}}}", kl["fused_4bit"] / 2));
  CliRun strict = modelbuild(dir(), {"-k", "fused_8bit", "fused_4bit"});
  EXPECT_EQ(strict.code, 3) << strict.output;
  EXPECT_EQ(count(strict.output, "] started"), 0u) << strict.output;
  EXPECT_NE(strict.output.find("mean KL"), std::string::npos) << strict.output;
  EXPECT_NE(strict.output.find("fused_8bit: up to date"), std::string::npos) << strict.output;
}

// The same fidelity step judges GGUF exports on their own bytes: the F16
// file is within rounding of the reference, Q8_0 closer than Q4_K_M, and
// one reference serves the GGUF and MLX targets alike.
TEST_F(FidelityCliTest, GgufExportsAreMeasuredAgainstTheSameReference) {
  set_default_gate("{suite: suite, min_accuracy: 0.0, max_mean_kl: 10}");
  write_file(dir() / "modelbuild.yaml", read_file(dir() / "modelbuild.yaml") + R"(  gguf_f16_gated:
    base: base_4bit
    adapters: [tools_lora]
    dtype: float16
    format: gguf
    gguf_type: F16
)");
  const std::vector<std::string> targets = {"fused_8bit", "gguf_f16_gated", "gguf_q8_0", "gguf_q4_k_m"};
  CliRun r = modelbuild(dir(), targets);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(started(r.output, "reference"), 1u) << r.output;
  EXPECT_EQ(started(r.output, "fidelity"), targets.size()) << r.output;
  std::map<std::string, double> kl;
  for (const std::string& t : targets) kl[t] = fidelity(t)["mean_kl"].get<double>();
  EXPECT_LT(kl["gguf_f16_gated"], 1e-6);
  EXPECT_LT(kl["gguf_f16_gated"], kl["gguf_q8_0"]);
  EXPECT_LT(kl["gguf_q8_0"], kl["gguf_q4_k_m"]);
  std::cout << "mean KL: GGUF F16 " << kl["gguf_f16_gated"] << ", Q8_0 " << kl["gguf_q8_0"] << ", Q4_K_M "
            << kl["gguf_q4_k_m"] << "; MLX 8-bit " << kl["fused_8bit"] << "\n";
  // A threshold between Q8_0 and Q4_K_M fails Q4_K_M alone, re-running nothing.
  set_default_gate(
      fmt::format("{{suite: suite, min_accuracy: 0.0, max_mean_kl: {}}}", (kl["gguf_q8_0"] + kl["gguf_q4_k_m"]) / 2));
  CliRun strict = modelbuild(dir(), {"-k", "gguf_q8_0", "gguf_q4_k_m"});
  EXPECT_EQ(strict.code, 3) << strict.output;
  EXPECT_EQ(count(strict.output, "] started"), 0u) << strict.output;
  EXPECT_NE(strict.output.find("gguf_q8_0: up to date"), std::string::npos) << strict.output;
}

TEST_F(FidelityCliTest, BitsAutoRejectsOnTopOneAgreementBeforeItsGateRuns) {
  // Every scored position must agree with the reference.
  set_default_gate("{suite: suite, min_accuracy: 1.0, min_top1_agreement: 1.0}");
  CliRun r = modelbuild(dir(), {"fused_auto"});
  ASSERT_EQ(r.code, 0) << r.output;
  const nlohmann::json search = report("fused_auto")["search"];
  size_t rejected_on_fidelity = 0;
  for (const auto& c : search) {
    const std::string name = c["candidate"];  // "3-bit gs32"
    const std::string tag = name.substr(0, name.find('-')) + "bit-gs" + name.substr(name.find("gs") + 2);
    if (c["verdict"] == "passed") {
      EXPECT_EQ(c["checks"]["top-1 agreement"].get<double>(), 1.0) << c;
      EXPECT_EQ(c["checks"]["accuracy"].get<double>(), 1.0) << c;
    }
    if (c["verdict"] != "rejected" || c["reasons"].dump().find("top-1 agreement") == std::string::npos) continue;
    ++rejected_on_fidelity;
    EXPECT_LT(c["checks"]["top-1 agreement"].get<double>(), 1.0) << c;
    // The fidelity step ran first and spared the gate.
    EXPECT_NE(r.output.find("[fidelity " + tag + " fused_auto] started"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("[gate " + tag + " fused_auto] started"), std::string::npos) << r.output;
  }
  EXPECT_GT(rejected_on_fidelity, 0u) << search.dump(2);
  auto lock = nlohmann::json::parse(read_file(dir() / "modelbuild.lock"));
  EXPECT_FALSE(lock["targets"]["fused_auto"]["search"]["winner"].get<std::string>().empty());
}

TEST_F(FidelityCliTest, AStricterMeanKlMakesTheSearchGoFurtherRunningOnlyTheNewCandidates) {
  set_default_gate("{suite: suite, min_accuracy: 1.0, max_mean_kl: 10}");
  ASSERT_EQ(modelbuild(dir(), {"fused_auto"}).code, 0);
  const nlohmann::json first = report("fused_auto")["search"];
  size_t w = 0;
  while (w < first.size() && !first[w]["winner"].get<bool>()) ++w;
  ASSERT_LT(w, first.size()) << first.dump(2);
  const double winner_kl = first[w]["checks"]["mean KL"].get<double>();
  ASSERT_GT(winner_kl, 0.0);

  set_default_gate(fmt::format("{{suite: suite, min_accuracy: 1.0, max_mean_kl: {}}}", winner_kl / 2));
  CliRun r = modelbuild(dir(), {"fused_auto"});
  ASSERT_EQ(r.code, 0) << r.output;
  const nlohmann::json second = report("fused_auto")["search"];
  EXPECT_EQ(second[w]["verdict"], "rejected");
  EXPECT_NE(second[w]["reasons"].dump().find("mean KL"), std::string::npos) << second[w];
  size_t w2 = 0;
  while (w2 < second.size() && !second[w2]["winner"].get<bool>()) ++w2;
  ASSERT_LT(w2, second.size());
  EXPECT_GT(w2, w);
  EXPECT_LE(second[w2]["checks"]["mean KL"].get<double>(), winner_kl / 2);
  // The candidates judged before were not run again; the reference neither.
  EXPECT_EQ(started(r.output, "reference"), 0u) << r.output;
  EXPECT_EQ(started(r.output, "fuse"), w2 - w) << r.output;
}

}  // namespace
}  // namespace mb::e2e
