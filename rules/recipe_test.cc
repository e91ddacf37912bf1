#include "graph/recipe.h"

#include <gtest/gtest.h>

#include <fstream>

#include "base/temp_dir.h"
#include "rules/builtin.h"
#include "rules/model_target.h"

namespace mb {
namespace {

Registry builtin_rules() {
  Registry r;
  register_builtin_rules(r);
  return r;
}

class RecipeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(m_dir.path() / "models/base");
    fs::create_directories(m_dir.path() / "adapters/a");
    std::ofstream(m_dir.path() / "suite.yaml") << "cases: []\n";
  }
  Result<Recipe> parse(const std::string& text) {
    return parse_recipe_text(*m_fs, text, m_dir.path() / "modelbuild.yaml", m_rules);
  }
  // Asserts the parse fails with exit status 2, at `line:col`, mentioning `needle`.
  void expect_error(const std::string& text, int line, int col, const std::string& needle) {
    auto r = parse(text);
    ASSERT_FALSE(r.ok()) << "expected an error mentioning: " << needle;
    EXPECT_EQ(exit_code_for(r.error().code), 2);
    std::string where = fmt::format("modelbuild.yaml:{}:{}", line, col);
    EXPECT_NE(r.error().where.find(where), std::string::npos) << r.error().to_string();
    EXPECT_NE(r.error().to_string().find(needle), std::string::npos) << r.error().to_string();
  }

  TempDir m_dir;
  Registry m_rules = builtin_rules();
  std::unique_ptr<FileSystem> m_fs = make_real_file_system();
};

const char* kGood = R"(
sources:
  base_4bit: models/base
  lora: {path: adapters/a}
  suite: suite.yaml
defaults:
  group_size: 64
targets:
  fused_8bit:
    base: base_4bit
    adapters: [lora]
    bits: 8.0
    dtype: float16
    gate: {suite: suite, min_accuracy: 1.0}
  fused_4bit:
    base: base_4bit
    adapters: lora
    fusion: inplace
  convert:
    command: [echo, "{model}", "{out}"]
    inputs: {model: fused_8bit}
    outputs: [model.gguf]
)";

TEST_F(RecipeTest, ParsesTargetsSourcesAndDefaults) {
  auto r = parse(kGood);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(r->targets.size(), 3u);
  const ModelSpec& m = *r->find_target("fused_8bit")->as<ModelSpec>();
  EXPECT_EQ(m.base, "base_4bit");
  EXPECT_EQ(m.adapters, std::vector<std::string>{"lora"});
  EXPECT_EQ(m.fusion, Fusion::kDequantize);
  ASSERT_TRUE(m.bits);
  EXPECT_EQ(*m.bits, 8);  // 8.0 normalizes to 8
  EXPECT_EQ(m.group_size, 64);
  ASSERT_TRUE(m.gate);
  EXPECT_EQ(m.gate->suite, "suite");
  EXPECT_EQ(r->find_target("fused_4bit")->as<ModelSpec>()->fusion, Fusion::kInplace);
  EXPECT_EQ(r->find_target("convert")->kind, "command");
  EXPECT_EQ(r->find_source("lora")->path, (m_dir.path() / "adapters/a").lexically_normal());
}

TEST_F(RecipeTest, UnknownKeySuggestsTheClosest) {
  expect_error("targets:\n  t:\n    base: x\n    adaptors: [y]\n", 4, 5, "did you mean 'adapters'");
}

TEST_F(RecipeTest, UnknownTopLevelKey) { expect_error("target:\n  t: {}\n", 1, 1, "did you mean 'targets'"); }

TEST_F(RecipeTest, WrongTypes) {
  const std::string pre = "sources:\n  b: models/base\ntargets:\n  t:\n    base: b\n";
  expect_error(pre + "    bits: eight\n", 6, 11, "'bits' must be an integer");
  expect_error(pre + "    bits: 7\n", 6, 11, "bits must be 2, 3, 4, 5, 6, 8");
  expect_error(pre + "    bits: 8.5\n", 6, 11, "'bits' must be an integer");
  expect_error(pre + "    bits: \"8\"\n", 6, 11, "'bits' must be an integer");
  expect_error(pre + "    group_size: 48\n", 6, 17, "group_size must be 32, 64 or 128");
  expect_error(pre + "    adapters: {a: 1}\n", 6, 15, "'adapters' must be a string or a list");
  expect_error(pre + "    gate: {suite: b, min_accuracy: 1.5}\n", 6, 36, "between 0 and 1");
  expect_error(pre + "    fusion: dequantise\n", 6, 13, "did you mean 'dequantize'");
}

TEST_F(RecipeTest, BitsAutoNeedsAGateAdaptersAndValidCandidates) {
  const std::string pre =
      "sources: {b: models/base, a: adapters/a, s: suite.yaml}\ntargets:\n  t:\n    base: b\n    adapters: [a]\n";
  expect_error(pre + "    bits: auto\n", 6, 11, "needs a gate");
  expect_error(pre + "    bits: auto\n    fusion: inplace\n    gate: {suite: s}\n", 6, 11, "fusion: dequantize");
  expect_error(pre + "    bits: auto\n    gate: {suite: s}\n    candidates: []\n", 8, 17, "non-empty list");
  expect_error(pre + "    bits: auto\n    gate: {suite: s}\n    candidates: [[4, 64], [7, 64]]\n", 8, 28,
               "bits must be 2, 3, 4, 5, 6 or 8, got 7");
  expect_error(pre + "    bits: auto\n    gate: {suite: s}\n    candidates: [[4, 48]]\n", 8, 22,
               "group size must be 32, 64 or 128, got 48");
  expect_error(pre + "    bits: auto\n    gate: {suite: s}\n    candidates: [4]\n", 8, 18, "[bits, group_size] pair");
  expect_error(pre + "    bits: 8\n    candidates: [[4, 64]]\n", 7, 17, "'candidates' is for bits: auto or gguf_type");
}

TEST_F(RecipeTest, AThresholdNothingMeasuresIsAnError) {
  const std::string pre = "sources: {b: models/base, a: adapters/a, s: suite.yaml}\ntargets:\n  t:\n    base: b\n";
  expect_error(pre + "    bits: 4\n    min_delta_retention: 0.9\n", 6, 26, "fuses no adapters");
  expect_error(pre + "    adapters: [a]\n    fusion: none\n    gate: {suite: s, min_delta_retention: 0.9}\n", 7, 11,
               "fuses no adapters");
  // From defaults it applies where it can.
  auto r =
      parse("sources: {b: models/base}\ndefaults: {min_delta_retention: 0.9}\ntargets:\n  t: {base: b, bits: 4}\n");
  EXPECT_TRUE(r.ok()) << r.error().to_string();
}

TEST_F(RecipeTest, MissingSourceNamesThePath) {
  expect_error("sources:\n  b: models/nothere\ntargets:\n  t: {base: b}\n", 2, 6, "does not exist");
}

TEST_F(RecipeTest, UnknownReferenceSuggests) {
  expect_error("sources:\n  base_4bit: models/base\ntargets:\n  t:\n    base: base_4bt\n", 5, 11,
               "did you mean 'base_4bit'");
}

TEST_F(RecipeTest, CyclesAreRejected) {
  auto r = parse("targets:\n  a: {base: b}\n  b: {base: c}\n  c: {base: a}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(exit_code_for(r.error().code), 2);
  EXPECT_NE(r.error().message.find("dependency cycle: a -> b -> c -> a"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().where.find("modelbuild.yaml:"), std::string::npos);
}

TEST_F(RecipeTest, DuplicateNames) {
  expect_error("sources:\n  b: models/base\ntargets:\n  t: {base: b}\n  t: {base: b}\n", 5, 3, "duplicate key 't'");
  expect_error("sources:\n  b: models/base\ntargets:\n  b: {base: b}\n", 4, 3, "both a source and a target");
}

TEST_F(RecipeTest, MeaninglessCombinations) {
  const std::string pre =
      "sources:\n  b: models/base\n  a: adapters/a\ntargets:\n  t:\n    base: b\n    adapters: [a]\n";
  expect_error(pre + "    fusion: inplace\n    bits: 8\n", 9, 11, "inplace keeps the base's own bits");
  expect_error(pre + "    fusion: none\n    bits: 8\n", 9, 11, "nothing to quantize");
}

TEST_F(RecipeTest, FidelityThresholds) {
  const std::string pre =
      "sources:\n  b: models/base\n  a: adapters/a\n  s: suite.yaml\ntargets:\n  t:\n    base: b\n"
      "    adapters: [a]\n";
  expect_error(pre + "    gate: {suite: s, max_mean_kl: -0.5}\n", 9, 35, "'max_mean_kl' must be a non-negative number");
  expect_error(pre + "    gate: {suite: s, min_top1_agreement: 1.5}\n", 9, 42,
               "'min_top1_agreement' must be between 0");
  expect_error(pre + "    gate: {suite: s, max_mean_kl: lots}\n", 9, 35, "max_mean_kl");
  expect_error(pre + "    gate: {suite: s, max_mean_kll: 0.1}\n", 9, 22, "did you mean 'max_mean_kl'");
  EXPECT_TRUE(parse(pre + "    gate: {suite: s, max_mean_kl: 0.05, min_top1_agreement: 0.95}\n").ok());
}

TEST_F(RecipeTest, ExportFormatsParse) {
  auto r = parse(R"(
sources: {b: models/base, a: adapters/a}
defaults: {group_size: 64, bits: 8}
targets:
  g: {base: b, adapters: [a], format: gguf, gguf_type: Q4_K_M}
  h: {base: b, format: hf, dtype: bf16}
  m: {base: b, format: mlx}
)");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const ModelSpec& g = *r->find_target("g")->as<ModelSpec>();
  EXPECT_EQ(g.format, ModelFormat::kGguf);
  EXPECT_EQ(g.gguf_type, "Q4_K_M");
  EXPECT_FALSE(g.bits) << "bits from defaults are MLX's and do not apply to an export";
  EXPECT_EQ(r->find_target("h")->as<ModelSpec>()->format, ModelFormat::kHf);
  const ModelSpec& m = *r->find_target("m")->as<ModelSpec>();
  EXPECT_EQ(m.format, ModelFormat::kMlx);
  EXPECT_EQ(m.bits, 8);
}

TEST_F(RecipeTest, ExportKeysAreValidated) {
  const std::string pre =
      "sources:\n  b: models/base\n  a: adapters/a\ntargets:\n  t:\n    base: b\n    adapters: [a]\n";
  expect_error(pre + "    format: ggfu\n", 8, 13, "did you mean 'gguf'");
  expect_error(pre + "    format: gguf\n", 8, 13, "format: gguf needs gguf_type");
  expect_error(pre + "    format: gguf\n    gguf_type: Q3_K\n", 9, 16, "unknown GGUF type 'Q3_K'");
  expect_error(pre + "    format: gguf\n    gguf_type: q4_k_m\n", 9, 16, "did you mean 'Q4_K_M'");
  expect_error(pre + "    format: gguf\n    gguf_type: Q8\n", 9, 16, "did you mean 'Q8_0'");
  expect_error(pre + "    gguf_type: Q8_0\n", 8, 16, "gguf_type is for format: gguf");
  expect_error(pre + "    format: hf\n    gguf_type: Q8_0\n", 9, 16, "gguf_type is for format: gguf");
  expect_error(pre + "    format: gguf\n    gguf_typ: Q8_0\n", 9, 5, "did you mean 'gguf_type'");
}

TEST_F(RecipeTest, GgufTypeAutoNeedsAGateAndValidCandidates) {
  const std::string pre =
      "sources: {b: models/base, a: adapters/a, s: suite.yaml}\ntargets:\n  t:\n    base: b\n    adapters: [a]\n"
      "    format: gguf\n    gguf_type: auto\n";
  auto r = parse(pre + "    gate: {suite: s}\n    candidates: [Q8_0, Q4_K_M]\n");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const ModelSpec& t = *r->find_target("t")->as<ModelSpec>();
  EXPECT_TRUE(t.auto_gguf());
  EXPECT_EQ(t.gguf_candidates, (std::vector<std::string>{"Q8_0", "Q4_K_M"}));
  auto d = parse(pre + "    gate: {suite: s}\n");
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  EXPECT_EQ(d->find_target("t")->as<ModelSpec>()->gguf_candidates,
            (std::vector<std::string>{"Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"}));
  expect_error(pre, 7, 16, "gguf_type: auto keeps the smallest GGUF type that passes the gate, so it needs a gate");
  expect_error(pre + "    gate: {suite: s}\n    candidates: []\n", 9, 17, "non-empty list of GGUF types");
  expect_error(pre + "    gate: {suite: s}\n    candidates: [Q4_K_M, q6_k]\n", 9, 26, "did you mean 'Q6_K'");
  expect_error(pre + "    gate: {suite: s}\n    candidates: [Q3_K]\n", 9, 18, "unknown GGUF type 'Q3_K'");
  expect_error(pre + "    gate: {suite: s}\n    candidates: [Q8_0, Q8_0]\n", 9, 24, "candidate Q8_0 is listed twice");
  expect_error(pre + "    gate: {suite: s}\n    candidates: [[4, 64]]\n", 9, 18, "a GGUF candidate is a type name");
  // Candidates of a fixed type, or GGUF types without a search, mean nothing.
  const std::string fixed =
      "sources: {b: models/base, a: adapters/a, s: suite.yaml}\ntargets:\n  t:\n    base: b\n"
      "    format: gguf\n    gguf_type: Q8_0\n";
  expect_error(fixed + "    candidates: [Q8_0]\n", 7, 17, "'candidates' is for bits: auto or gguf_type: auto");
}

TEST_F(RecipeTest, ExportsRejectMlxQuantization) {
  const std::string pre =
      "sources:\n  b: models/base\n  a: adapters/a\n  s: suite.yaml\ntargets:\n  t:\n"
      "    base: b\n    adapters: [a]\n";
  const std::string gguf = pre + "    format: gguf\n    gguf_type: Q8_0\n";
  expect_error(gguf + "    bits: 8\n", 11, 11, "format: gguf quantizes to its gguf_type (Q8_0)");
  expect_error(gguf + "    bits: auto\n    gate: {suite: s}\n", 11, 11, "quantizes to its gguf_type");
  expect_error(gguf + "    group_size: 32\n", 11, 17, "'group_size' is for MLX quantization");
  expect_error(gguf + "    quantizer: cpu\n", 11, 16, "'quantizer' is for MLX quantization");
  expect_error(gguf + "    fusion: inplace\n", 11, 13, "needs the fused weights in float");
  expect_error(gguf + "    fusion: none\n", 11, 13, "can only carry fused weights");
  const std::string hf = pre + "    format: hf\n";
  expect_error(hf + "    bits: 4\n", 10, 11, "format: hf writes float weights");
  expect_error(hf + "    min_delta_retention: 0.9\n", 10, 26, "no quantization whose delta retention");
  // A GGUF export of fused adapters measures retention, so a threshold is fine.
  auto r = parse(gguf + "    min_delta_retention: 0.9\n");
  EXPECT_TRUE(r.ok()) << r.error().to_string();
}

TEST_F(RecipeTest, SyntaxErrorHasAPosition) {
  auto r = parse("targets:\n  t: [unclosed\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().where.find("modelbuild.yaml:"), std::string::npos);
  EXPECT_NE(r.error().message.find("YAML syntax error"), std::string::npos);
}

TEST_F(RecipeTest, CommandTargetNeedsOutputs) {
  expect_error("targets:\n  c:\n    command: [echo]\n", 3, 5, "needs 'outputs'");
  expect_error("targets:\n  c:\n    command: [echo]\n    outputs: [../escape]\n", 4, 14, "relative path inside");
}

TEST(DidYouMean, PicksCloseWordsOnly) {
  EXPECT_EQ(did_you_mean("adaptors", {"adapters", "base"}), "adapters");
  EXPECT_EQ(did_you_mean("zzzzzz", {"adapters", "base"}), "");
}

}  // namespace
}  // namespace mb
