// --check with test-only step kinds: one that writes a random byte (the
// injected non-determinism), one that writes a safetensors file with one
// random tensor, and a deterministic one. They are registered only here,
// under the `command` kind, in this test's own Registry.
#include "release/check.h"

#include <gtest/gtest.h>

#include <random>

#include "graph/plan.h"
#include "release/release_test_support.h"
#include "rules/command.h"
#include "tensors/safetensors_writer.h"

namespace mb {
namespace {

enum class Behaviour { kDeterministic, kRandomByte, kRandomTensor };

class FakeCommandRule : public Rule {
 public:
  explicit FakeCommandRule(Behaviour b) : m_behaviour(b) {}
  std::string_view kind() const override { return "command"; }
  int algorithm_version() const override { return 1; }
  Status check_params(const nlohmann::json&) const override { return {}; }
  Status run(StepContext& ctx) const override {
    std::random_device rd;
    switch (m_behaviour) {
      case Behaviour::kDeterministic:
        return write_file_atomic(ctx.fs, ctx.output_dir / "out.bin", std::string("same every time"));
      case Behaviour::kRandomByte: {
        // Two different bytes in a row can be equal by chance; 8 cannot (2^-64).
        std::string bytes;
        for (int i = 0; i < 8; ++i) bytes += static_cast<char>(rd() & 0xff);
        return write_file_atomic(ctx.fs, ctx.output_dir / "out.bin", bytes);
      }
      case Behaviour::kRandomTensor: {
        std::vector<float> stable = {1, 2, 3, 4};
        std::vector<float> noisy = {static_cast<float>(rd()), static_cast<float>(rd())};
        std::vector<TensorData> tensors = {{{"layers.0.stable", DType::kF32, {4}}, std::as_bytes(std::span(stable))},
                                           {{"layers.1.noisy", DType::kF32, {2}}, std::as_bytes(std::span(noisy))}};
        return write_safetensors(ctx.fs, ctx.output_dir / "model.safetensors", tensors, {});
      }
    }
    return {};
  }

 private:
  Behaviour m_behaviour;
};

class CheckTest : public ::testing::Test {
 protected:
  Result<CheckResult> check(Behaviour b) {
    Registry rules;
    rules.add(std::make_unique<CommandTargetKind>());
    rules.add(std::make_unique<FakeCommandRule>(b));
    const fs::path dir = m_tmp.path();
    auto recipe = parse_recipe_text(*m_fs, "targets:\n  t:\n    command: [fake]\n    outputs: [out]\n",
                                    dir / "modelbuild.yaml", rules);
    EXPECT_TRUE(recipe.ok()) << recipe.error().to_string();
    auto plan = make_plan(*recipe, rules, {"t"});
    EXPECT_TRUE(plan.ok());
    BuildOptions o;
    o.cache_dir = dir / ".modelbuild";
    o.state_dir = dir / ".modelbuild/state";
    o.build_dir = dir / "build";
    o.jobs = 1;
    return check_reproducible(*m_fs, m_reporter, rules, *recipe, *plan, o, dir / "scratch");
  }
  std::unique_ptr<FileSystem> m_fs = make_real_file_system();
  NullReporter m_reporter;
  TempDir m_tmp{"check-test"};
};

TEST_F(CheckTest, DeterministicStepsPass) {
  auto r = check(Behaviour::kDeterministic);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_TRUE(r->reproducible());
  EXPECT_EQ(r->steps_compared, 1u);
}

TEST_F(CheckTest, CatchesARandomByteAndNamesTheFile) {
  auto r = check(Behaviour::kRandomByte);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_TRUE(r->reference_ok);
  ASSERT_EQ(r->differences.size(), 1u);
  EXPECT_NE(r->differences[0].find("command t: not reproducible"), std::string::npos) << r->differences[0];
  EXPECT_NE(r->differences[0].find("out.bin differs"), std::string::npos) << r->differences[0];
}

TEST_F(CheckTest, NamesTheDifferingTensor) {
  auto r = check(Behaviour::kRandomTensor);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_EQ(r->differences.size(), 1u);
  const std::string& msg = r->differences[0];
  EXPECT_NE(msg.find("model.safetensors differs"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tensor layers.1.noisy: values differ"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("layers.0.stable"), std::string::npos) << msg;
}

}  // namespace
}  // namespace mb
