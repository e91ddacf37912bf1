#include "graph/plan.h"

#include <gtest/gtest.h>

#include <fstream>

#include "base/temp_dir.h"
#include "rules/builtin.h"
#include "rules/fidelity.h"
#include "rules/fuse.h"
#include "rules/gate.h"

namespace mb {
namespace {

Registry builtin_rules() {
  Registry r;
  register_builtin_rules(r);
  return r;
}

class PlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(m_dir.path() / "base");
    fs::create_directories(m_dir.path() / "lora");
    std::ofstream(m_dir.path() / "suite.yaml") << "x\n";
  }
  Plan plan(const std::string& targets_yaml, const std::vector<std::string>& wanted) {
    std::string text = "sources: {base: base, lora: lora, suite: suite.yaml}\ntargets:\n" + targets_yaml;
    auto r = parse_recipe_text(*m_fs, text, m_dir.path() / "modelbuild.yaml", m_rules);
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    m_recipe = std::move(r).value();
    auto p = make_plan(m_recipe, m_rules, wanted);
    EXPECT_TRUE(p.ok()) << p.error().to_string();
    return std::move(p).value();
  }
  static int count(const Plan& p, const std::string& kind) {
    int n = 0;
    for (const auto& s : p.steps) n += s.kind == kind;
    return n;
  }
  TempDir m_dir;
  Registry m_rules = builtin_rules();
  std::unique_ptr<FileSystem> m_fs = make_real_file_system();
  Recipe m_recipe;
};

TEST_F(PlanTest, FusionToBitsIsOneStreamingStep) {
  Plan p = plan(R"(
  fused_f16: {base: base, adapters: [lora], dtype: float16}
  fused_8bit: {base: base, adapters: [lora], bits: 8, dtype: float16, min_delta_retention: 0.9}
  fused_6bit: {base: base, adapters: [lora], bits: 6, dtype: float16}
)",
                {"fused_f16", "fused_8bit", "fused_6bit"});
  // One fuse step per target: the quantized ones fuse straight to their
  // bits, and none reads the float model back.
  EXPECT_EQ(count(p, "fuse"), 3);
  EXPECT_EQ(count(p, "quantize"), 0);
  const TargetPlan& t8 = p.targets.at("fused_8bit");
  const Step& f8 = p.steps[t8.artifact->step];
  EXPECT_EQ(f8.kind, "fuse");
  EXPECT_EQ(f8.params["mode"], "dequantize");
  EXPECT_EQ(f8.params["dtype"], "float16");
  EXPECT_EQ(f8.params["bits"], 8);
  EXPECT_EQ(f8.params["group_size"], 64);
  EXPECT_EQ(f8.params["quantizer"], "gpu");
  ASSERT_EQ(f8.inputs.size(), 2u);
  EXPECT_TRUE(f8.inputs[0].is_source());
  // The retention check reads the fuse step's own report.
  EXPECT_EQ(t8.marked(kRetentionMark), t8.artifact->step);
  ASSERT_EQ(t8.checks.size(), 1u);
  EXPECT_EQ(t8.checks[0].step, t8.artifact->step);
  EXPECT_EQ(t8.checks[0].pointer, "/retention/retained");
  const Step& f6 = p.steps[p.targets.at("fused_6bit").artifact->step];
  EXPECT_EQ(f6.params["bits"], 6);
  EXPECT_NE(f6.index, f8.index);
  const TargetPlan& tf = p.targets.at("fused_f16");
  EXPECT_FALSE(p.steps[tf.artifact->step].params.contains("bits"));
  EXPECT_EQ(tf.marked(kRetentionMark), -1);  // float fusion quantizes nothing
}

TEST_F(PlanTest, GgufExportsFuseInTheirOwnPassAndHfFollowsTheFloatFuse) {
  Plan p = plan(R"(
  fused_f16: {base: base, adapters: [lora], dtype: float16}
  gguf_q8_0: {base: base, adapters: [lora], dtype: float16, format: gguf, gguf_type: Q8_0, min_delta_retention: 0.9}
  hf_f16: {base: base, adapters: [lora], dtype: float16, format: hf}
  gguf_base: {base: base, format: gguf, gguf_type: F16}
)",
                {});
  EXPECT_EQ(count(p, "fuse"), 1);  // one float fuse feeds fused_f16 and the hf export
  EXPECT_EQ(count(p, "export"), 3);
  const TargetPlan& g = p.targets.at("gguf_q8_0");
  const Step& e = p.steps[g.artifact->step];
  EXPECT_EQ(e.kind, "export");
  EXPECT_EQ(e.params, nlohmann::json({{"format", "gguf"}, {"gguf_type", "Q8_0"}, {"fuse_dtype", "float16"}}));
  ASSERT_EQ(e.inputs.size(), 2u);  // base and adapter: fused in the export's pass, no float model between
  EXPECT_EQ(e.inputs[0].role, "base");
  EXPECT_TRUE(e.inputs[0].is_source());
  EXPECT_EQ(e.inputs[1].role, "adapter.0");
  EXPECT_EQ(g.marked(kRetentionMark), e.index);
  ASSERT_EQ(g.checks.size(), 1u);
  EXPECT_EQ(g.checks[0].step, e.index);
  const Step& h = p.steps[p.targets.at("hf_f16").artifact->step];
  EXPECT_EQ(h.params, nlohmann::json({{"format", "hf"}}));
  ASSERT_EQ(h.inputs.size(), 1u);
  EXPECT_EQ(h.inputs[0].step, p.targets.at("fused_f16").artifact->step);
  EXPECT_EQ(p.targets.at("hf_f16").marked(kRetentionMark), -1);
  // Without adapters the base itself is exported.
  const Step& b = p.steps[p.targets.at("gguf_base").artifact->step];
  ASSERT_EQ(b.inputs.size(), 1u);
  EXPECT_TRUE(b.inputs[0].is_source());
  EXPECT_EQ(b.inputs[0].role, "model");
  EXPECT_EQ(b.params, nlohmann::json({{"format", "gguf"}, {"gguf_type", "F16"}}));  // key as before
}

TEST_F(PlanTest, FusionModesExpandDifferently) {
  Plan p = plan(R"(
  inplace: {base: base, adapters: [lora], fusion: inplace}
  runtime: {base: base, adapters: [lora], fusion: none, gate: {suite: suite}}
  float: {base: base, adapters: [lora], dtype: float16}
  alias: {base: base}
)",
                {});
  const TargetPlan& inplace = p.targets.at("inplace");
  EXPECT_EQ(p.steps[inplace.artifact->step].params["mode"], "inplace");
  const TargetPlan& runtime = p.targets.at("runtime");
  EXPECT_TRUE(runtime.artifact->is_source());
  EXPECT_EQ(runtime.runtime_inputs.size(), 1u);
  ASSERT_GE(runtime.marked(kGateMark), 0);
  // The gate of a runtime-adapter target reads the adapter too.
  EXPECT_EQ(p.steps[runtime.marked(kGateMark)].inputs.size(), 3u);
  EXPECT_EQ(p.steps[p.targets.at("float").artifact->step].kind, "fuse");
  EXPECT_TRUE(p.targets.at("alias").artifact->is_source());
  EXPECT_EQ(count(p, "fuse"), 2);  // inplace and dequantize differ
}

TEST_F(PlanTest, TargetsCanBuildOnTargets) {
  Plan p = plan(R"(
  fused: {base: base, adapters: [lora], dtype: float16}
  q4: {base: fused, bits: 4}
  convert:
    command: "cp {model}/x {out}/y"
    inputs: {model: q4}
    outputs: [y]
)",
                {"convert"});
  EXPECT_EQ(p.targets.size(), 3u);  // dependencies are planned too
  const Step& cmd = p.steps[p.targets.at("convert").artifact->step];
  ASSERT_EQ(cmd.inputs.size(), 1u);
  EXPECT_EQ(p.steps[cmd.inputs[0].step].kind, "quantize");
  EXPECT_EQ(p.closure("convert"), (std::vector<std::string>{"fused", "q4", "convert"}));
  // Topological order: every input step comes first.
  for (const auto& s : p.steps)
    for (int d : s.deps()) EXPECT_LT(d, s.index);
}

TEST_F(PlanTest, ThresholdsAreChecksNotParams) {
  Plan a = plan("  t: {base: base, adapters: [lora], bits: 8, gate: {suite: suite, min_accuracy: 1.0}}\n", {});
  Plan b = plan("  t: {base: base, adapters: [lora], bits: 8, gate: {suite: suite, min_accuracy: 0.5}}\n", {});
  const TargetPlan& ta = a.targets.at("t");
  EXPECT_EQ(a.steps[ta.marked(kGateMark)].params, b.steps[b.targets.at("t").marked(kGateMark)].params);
  ASSERT_EQ(ta.checks.size(), 1u);
  EXPECT_EQ(ta.checks[0].pointer, "/accuracy");
}

TEST_F(PlanTest, BitsAutoTriesCandidatesSmallestFirstSharingStepsWithFixedBits) {
  Plan p = plan(R"(
  fused_8bit: {base: base, adapters: [lora], bits: 8, dtype: float16, gate: {suite: suite}}
  fused_auto: {base: base, adapters: [lora], bits: auto, dtype: float16, min_delta_retention: 0.5,
               gate: {suite: suite}}
)",
                {"fused_8bit", "fused_auto"});
  const TargetPlan& a = p.targets.at("fused_auto");
  EXPECT_FALSE(a.artifact);
  ASSERT_EQ(a.candidates.size(), 6u);
  // By bits per weight (bits + 32 / group size): 4.0, 4.5, 5.0, 5.5, 6.5, 8.5.
  std::vector<std::string> names;
  for (const Candidate& c : a.candidates) names.push_back(c.name);
  EXPECT_EQ(names, (std::vector<std::string>{"3-bit gs32", "4-bit gs64", "4-bit gs32", "5-bit gs64", "6-bit gs64",
                                             "8-bit gs64"}));
  for (size_t k = 0; k < a.candidates.size(); ++k) {
    const Candidate& c = a.candidates[k];
    const Step& fuse = p.steps[c.artifact.step];
    EXPECT_EQ(fuse.kind, "fuse");
    ASSERT_EQ(c.checks.size(), 2u);  // delta retention on the fuse, accuracy on the gate
    EXPECT_EQ(c.checks[0].step, c.artifact.step);
    EXPECT_EQ(p.steps[c.marked(kGateMark)].kind, "gate");
    // Each candidate's fuse waits for the candidate before it to be judged.
    if (k == 0) {
      EXPECT_TRUE(fuse.after.empty());
    } else {
      const Candidate& prev = a.candidates[k - 1];
      EXPECT_EQ(fuse.after, (std::vector<int>{prev.artifact.step, prev.marked(kGateMark)}));
    }
  }
  // The 8-bit candidate is fused_8bit's own fuse and gate: built once.
  const TargetPlan& f8 = p.targets.at("fused_8bit");
  EXPECT_EQ(a.candidates.back().artifact.step, f8.artifact->step);
  EXPECT_EQ(a.candidates.back().marked(kGateMark), f8.marked(kGateMark));
}

TEST_F(PlanTest, BitsAutoCandidatesCanBeChosen) {
  Plan p = plan(
      "  t: {base: base, adapters: [lora], bits: auto, candidates: [[8, 128], [2, 32]], gate: {suite: suite}}\n", {});
  const TargetPlan& t = p.targets.at("t");
  ASSERT_EQ(t.candidates.size(), 2u);
  EXPECT_EQ(t.candidates[0].name, "2-bit gs32");
  EXPECT_EQ(t.candidates[1].name, "8-bit gs128");
  EXPECT_EQ(t.candidates[0].checks.size(), 1u);  // no min_delta_retention: accuracy only
}

// gguf_type: auto: one GGUF export per type in nominal size order, each
// judged like a bits: auto candidate, sharing steps with fixed-type targets.
TEST_F(PlanTest, GgufTypeAutoTriesTypesSmallestFirstSharingStepsWithFixedTypes) {
  Plan p = plan(R"(
  gguf_q8_0: {base: base, adapters: [lora], dtype: float16, format: gguf, gguf_type: Q8_0, gate: {suite: suite}}
  gguf_auto: {base: base, adapters: [lora], dtype: float16, format: gguf, gguf_type: auto,
              candidates: [Q8_0, Q6_K, Q4_K_M, Q4_0, Q5_K_M], min_delta_retention: 0.5, gate: {suite: suite}}
  plain_auto: {base: base, format: gguf, gguf_type: auto, candidates: [Q8_0, F16], gate: {suite: suite}}
)",
                {"gguf_q8_0", "gguf_auto", "plain_auto"});
  const TargetPlan& a = p.targets.at("gguf_auto");
  EXPECT_FALSE(a.artifact);
  std::vector<std::string> names;
  for (const Candidate& c : a.candidates) names.push_back(c.name);
  EXPECT_EQ(names, (std::vector<std::string>{"Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"}));
  for (size_t k = 0; k < a.candidates.size(); ++k) {
    const Candidate& c = a.candidates[k];
    const Step& exp = p.steps[c.artifact.step];
    EXPECT_EQ(exp.kind, "export");
    EXPECT_EQ(exp.params["gguf_type"], c.name);
    EXPECT_EQ(exp.inputs.size(), 2u) << "base and adapter: the export fuses in its own pass";
    ASSERT_EQ(c.checks.size(), 2u);  // delta retention on the export, accuracy on the gate
    EXPECT_EQ(c.checks[0].step, c.artifact.step);
    EXPECT_EQ(p.steps[c.marked(kGateMark)].kind, "gate");
    if (k > 0) {
      const Candidate& prev = a.candidates[k - 1];
      EXPECT_EQ(exp.after, (std::vector<int>{prev.artifact.step, prev.marked(kGateMark)}));
    }
  }
  const TargetPlan& q8 = p.targets.at("gguf_q8_0");
  EXPECT_EQ(a.candidates.back().artifact.step, q8.artifact->step);
  EXPECT_EQ(a.candidates.back().marked(kGateMark), q8.marked(kGateMark));
  // Without adapters the export reads the base and measures nothing.
  const TargetPlan& plain = p.targets.at("plain_auto");
  ASSERT_EQ(plain.candidates.size(), 2u);
  EXPECT_EQ(plain.candidates[0].name, "Q8_0");
  EXPECT_EQ(plain.candidates[1].name, "F16");
  EXPECT_EQ(plain.candidates[0].checks.size(), 1u);
  EXPECT_EQ(p.steps[plain.candidates[0].artifact.step].inputs.size(), 1u);
}

TEST_F(PlanTest, FidelityThresholdsAddOneSharedReferenceAndAFidelityStepPerCandidate) {
  Plan p = plan(R"(
  fused_8bit: {base: base, adapters: [lora], bits: 8, gate: {suite: suite, max_mean_kl: 0.01}}
  fused_auto: {base: base, adapters: [lora], bits: auto, candidates: [[4, 64], [8, 64]],
               gate: {suite: suite, max_mean_kl: 0.01, min_top1_agreement: 0.9}}
  plain: {base: base, adapters: [lora], bits: 6, gate: {suite: suite}}
)",
                {});
  EXPECT_EQ(count(p, "reference_logits"), 1);  // (base, lora, suite): one reference for all
  EXPECT_EQ(count(p, "fidelity"), 2);          // 4-bit gs64, and 8-bit gs64 shared with fused_8bit
  const TargetPlan& f8 = p.targets.at("fused_8bit");
  const int fid = f8.marked(kFidelityMark);
  ASSERT_GE(fid, 0);
  EXPECT_EQ(p.steps[fid].kind, "fidelity");
  // The cheap check first: the gate waits for the fidelity step.
  EXPECT_EQ(p.steps[f8.marked(kGateMark)].after, std::vector<int>{fid});
  ASSERT_EQ(f8.checks.size(), 2u);
  EXPECT_EQ(f8.checks[1].pointer, "/mean_kl");
  EXPECT_TRUE(f8.checks[1].at_most);
  EXPECT_DOUBLE_EQ(f8.checks[1].min, 0.01);
  const TargetPlan& a = p.targets.at("fused_auto");
  ASSERT_EQ(a.candidates.size(), 2u);
  const Candidate& c4 = a.candidates[0];
  ASSERT_EQ(c4.checks.size(), 3u);  // mean KL, top-1 agreement, accuracy
  EXPECT_EQ(c4.checks[0].what, kMeanKl);
  EXPECT_EQ(c4.checks[1].what, kTop1Agreement);
  EXPECT_FALSE(c4.checks[1].at_most);
  EXPECT_EQ(a.candidates[1].marked(kFidelityMark), fid);
  // The next candidate waits for the whole verdict of the one before.
  EXPECT_EQ(p.steps[a.candidates[1].artifact.step].after,
            (std::vector<int>{c4.artifact.step, c4.marked(kGateMark), c4.marked(kFidelityMark)}));
  // No threshold, no fidelity step.
  EXPECT_LT(p.targets.at("plain").marked(kFidelityMark), 0);
}

TEST_F(PlanTest, ChangingAFidelityThresholdChangesNoStep) {
  Plan a = plan("  t: {base: base, adapters: [lora], bits: 8, gate: {suite: suite, max_mean_kl: 0.1}}\n", {});
  Plan b = plan("  t: {base: base, adapters: [lora], bits: 8, gate: {suite: suite, max_mean_kl: 0.5}}\n", {});
  ASSERT_EQ(a.steps.size(), b.steps.size());
  for (size_t i = 0; i < a.steps.size(); ++i) {
    EXPECT_EQ(a.steps[i].kind, b.steps[i].kind);
    EXPECT_EQ(a.steps[i].params, b.steps[i].params);
  }
}

TEST_F(PlanTest, AnotherTargetCannotBuildOnASearch) {
  std::string text =
      "sources: {base: base, lora: lora, suite: suite.yaml}\ntargets:\n"
      "  a: {base: base, adapters: [lora], bits: auto, gate: {suite: suite}}\n  b: {base: a, bits: 4}\n";
  auto r = parse_recipe_text(*m_fs, text, m_dir.path() / "modelbuild.yaml", m_rules);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  auto plan = make_plan(*r, m_rules, {"b"});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(exit_code_for(plan.error().code), 2);
  EXPECT_NE(plan.error().message.find("a search chooses"), std::string::npos) << plan.error().message;
}

TEST_F(PlanTest, UnknownTarget) {
  auto r = parse_recipe_text(*m_fs, "sources: {base: base}\ntargets:\n  fused_8bit: {base: base}\n",
                             m_dir.path() / "modelbuild.yaml", m_rules);
  ASSERT_TRUE(r.ok());
  auto p = make_plan(*r, m_rules, {"fused_8bt"});
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(exit_code_for(p.error().code), 2);
  EXPECT_NE(p.error().message.find("did you mean 'fused_8bit'"), std::string::npos);
}

TEST_F(PlanTest, DotOutputMentionsEveryStep) {
  Plan p = plan("  t: {base: base, adapters: [lora], bits: 8, gate: {suite: suite}}\n", {});
  std::string dot = plan_to_dot(p);
  EXPECT_NE(dot.find("digraph"), std::string::npos);
  EXPECT_NE(dot.find("fuse"), std::string::npos);
  EXPECT_NE(dot.find("gate"), std::string::npos);
  const std::string text = plan_to_text(p);
  EXPECT_NE(text.find("target t: artifact #0"), std::string::npos);
  // Parameters print as JSON people can read, not as the key encoding.
  EXPECT_NE(text.find(R"(#0 fuse [fuse t] {"bits":8,"dtype":"auto")"), std::string::npos) << text;
}

}  // namespace
}  // namespace mb
