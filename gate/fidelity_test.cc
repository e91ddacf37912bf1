#include "gate/fidelity.h"

#include <gtest/gtest.h>

#include <cmath>

#include "base/temp_dir.h"
#include "base/test_paths.h"
#include "inference/engine.h"

namespace mb::gate {
namespace {

TEST(Fidelity, KlOfIdenticalLogitsIsExactlyZero) {
  const std::vector<float> logits = {1.5f, -2.0f, 0.25f, 7.0f, 7.0f};
  const auto p = log_softmax(logits);
  EXPECT_EQ(kl_divergence(p, p), 0.0);
  FidelityAccumulator acc;
  acc.add(logits, logits);
  EXPECT_EQ(acc.figures().mean_kl, 0.0);
  EXPECT_EQ(acc.figures().top1_agreement, 1.0);
}

TEST(Fidelity, KlIsInvariantToAShiftOfTheLogits) {
  // softmax(x + c) = softmax(x): logits that differ by a constant are the
  // same distribution.
  const std::vector<float> a = {0.0f, 1.0f, 2.0f};
  const std::vector<float> b = {10.0f, 11.0f, 12.0f};
  EXPECT_NEAR(kl_divergence(log_softmax(a), log_softmax(b)), 0.0, 1e-12);
}

TEST(Fidelity, KlOfTwoCoinsMatchesTheClosedForm) {
  // P = (1/2, 1/2), Q = (1/4, 3/4): KL = 1/2 ln 2 + 1/2 ln(2/3)
  //   = ln 2 - 1/2 ln 3 ≈ 0.1438410362.
  const std::vector<float> p = {0.0f, 0.0f};
  const std::vector<float> q = {0.0f, static_cast<float>(std::log(3.0))};
  const double expected = std::log(2.0) - 0.5 * std::log(3.0);
  EXPECT_NEAR(kl_divergence(log_softmax(p), log_softmax(q)), expected, 1e-7);
  // Not symmetric: KL(Q || P) = 1/4 ln(1/2) + 3/4 ln(3/2) ≈ 0.1308.
  const double reverse = 0.25 * std::log(0.5) + 0.75 * std::log(1.5);
  EXPECT_NEAR(kl_divergence(log_softmax(q), log_softmax(p)), reverse, 1e-7);
}

TEST(Fidelity, AccumulatorGivesMeanMaxAndAgreement) {
  FidelityAccumulator acc;
  const std::vector<float> p = {0.0f, 0.0f};
  const std::vector<float> q = {0.0f, static_cast<float>(std::log(3.0))};
  acc.add(p, p);  // KL 0, argmax 0 and 0: agree
  acc.add(p, q);  // KL 0.1438, argmax 0 and 1: disagree
  const FidelityFigures f = acc.figures();
  const double kl = std::log(2.0) - 0.5 * std::log(3.0);
  EXPECT_EQ(f.positions, 2);
  EXPECT_NEAR(f.mean_kl, kl / 2, 1e-7);
  EXPECT_NEAR(f.max_kl, kl, 1e-7);
  EXPECT_DOUBLE_EQ(f.top1_agreement, 0.5);
  EXPECT_EQ(FidelityAccumulator().figures().positions, 0);
}

TEST(Fidelity, ArgmaxTakesTheFirstOfEqualValues) {
  const std::vector<float> v = {1.0f, 3.0f, 3.0f, 2.0f};
  EXPECT_EQ(argmax(v), 1u);
}

// The tiny example: its base with its adapter at run time is the reference.
class TinyFidelity : public ::testing::Test {
 protected:
  static std::unique_ptr<inference::Engine> load(bool with_adapter) {
    inference::LoadOptions lo;
    lo.threads = 1;
    if (with_adapter) lo.adapters = {tiny() / "adapters" / "tools-lora"};
    auto e = inference::Engine::load(*m_fs, tiny() / "models" / "base-4bit", lo);
    EXPECT_TRUE(e.ok()) << e.error().to_string();
    return e.ok() ? std::move(*e) : nullptr;
  }
  static fs::path tiny() { return test::source_dir() / "examples" / "tiny"; }
  static Suite suite() {
    auto s = load_suite(*m_fs, tiny() / "suite.yaml");
    EXPECT_TRUE(s.ok());
    return *s;
  }
  static inline std::unique_ptr<FileSystem> m_fs = make_real_file_system();
};

TEST_F(TinyFidelity, TheReferenceAgainstItselfIsZeroAndTheBaseIsNot) {
  auto ref_engine = load(true);
  ASSERT_TRUE(ref_engine);
  auto ref = compute_reference(*ref_engine, suite(), 8);
  ASSERT_TRUE(ref.ok()) << ref.error().to_string();
  ASSERT_EQ(ref->cases.size(), 5u);
  for (const auto& c : ref->cases) {
    EXPECT_GE(c.scored(), 1);
    EXPECT_LE(c.scored(), 9);
    EXPECT_EQ(c.logits.size(), size_t(c.scored() * ref->vocab));
  }
  // Stored and read back bit for bit.
  TempDir tmp;
  ASSERT_TRUE(write_reference(*m_fs, tmp.path() / "reference.safetensors", *ref).ok());
  auto back = read_reference(*m_fs, tmp.path() / "reference.safetensors");
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  ASSERT_EQ(back->cases.size(), ref->cases.size());
  EXPECT_EQ(back->cases[2].tokens, ref->cases[2].tokens);
  EXPECT_EQ(back->cases[2].logits, ref->cases[2].logits);
  EXPECT_EQ(back->cases[2].prompt, ref->cases[2].prompt);

  auto same = measure_fidelity(*load(true), *back);
  ASSERT_TRUE(same.ok()) << same.error().to_string();
  EXPECT_EQ(same->overall.mean_kl, 0.0);
  EXPECT_EQ(same->overall.top1_agreement, 1.0);
  EXPECT_EQ(same->overall.positions, ref->positions());

  // The untrained base answers differently: far from the reference.
  auto base = measure_fidelity(*load(false), *back);
  ASSERT_TRUE(base.ok()) << base.error().to_string();
  EXPECT_GT(base->overall.mean_kl, 0.01);
  EXPECT_GE(base->overall.max_kl, base->overall.mean_kl);
  EXPECT_LT(base->overall.top1_agreement, 1.0);
  EXPECT_EQ(base->to_json()["cases"].size(), 5u);
}

TEST_F(TinyFidelity, AFileThatIsNotAReferenceIsCorrupt) {
  TempDir tmp;
  ASSERT_TRUE(write_file_atomic(*m_fs, tmp.path() / "r.safetensors", "not safetensors").ok());
  auto r = read_reference(*m_fs, tmp.path() / "r.safetensors");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kCorrupt);
  auto missing = read_reference(*m_fs, tiny() / "models" / "base-4bit" / "model.safetensors");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().to_string().find("reference logits"), std::string::npos) << missing.error().to_string();
}

}  // namespace
}  // namespace mb::gate
