#include "inference/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>

namespace mb::inference {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

TEST(Sampler, TemperatureZeroIsArgmaxWithTheLowestIndexOnTies) {
  Sampler s({});
  const std::vector<float> v = {0.5f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(s.sample(v), 1);
  SamplingOptions o;
  o.temperature = 0;
  o.top_p = 0.1;
  o.seed = 7;
  Sampler t(o);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(t.sample(v), 1);
}

TEST(Sampler, TheSameSeedGivesTheSameDrawsAndAnotherSeedOthers) {
  std::vector<float> v(50);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(std::sin(i * 1.7));
  auto draws = [&](uint64_t seed) {
    SamplingOptions o;
    o.temperature = 1.0;
    o.seed = seed;
    Sampler s(o);
    std::vector<int32_t> out;
    for (int i = 0; i < 40; ++i) out.push_back(s.sample(v));
    return out;
  };
  EXPECT_EQ(draws(42), draws(42));
  EXPECT_NE(draws(42), draws(43));
}

TEST(Sampler, UniformFollowsTheStandardsMt19937_64Stream) {
  SamplingOptions o;
  o.temperature = 1;
  o.seed = 5489;  // the standard's default seed
  Sampler s(o);
  // The standard fixes the 10000th output of a default-constructed
  // mt19937_64: 9981545732273789042. Skip 9999 draws to reach it.
  for (int i = 0; i < 9999; ++i) s.uniform();
  EXPECT_EQ(s.uniform(), static_cast<double>(9981545732273789042ull >> 11) * 0x1.0p-53);
}

TEST(Sampler, FrequenciesFollowTheSoftmax) {
  // logits ln(1), ln(2), ln(3), ln(4): probabilities 0.1, 0.2, 0.3, 0.4.
  const std::vector<float> v = {0.0f, std::log(2.0f), std::log(3.0f), std::log(4.0f)};
  SamplingOptions o;
  o.temperature = 1;
  o.seed = 1;
  Sampler s(o);
  std::map<int32_t, int> count;
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++count[s.sample(v)];
  for (int k = 0; k < 4; ++k) EXPECT_NEAR(count[k] / double(n), 0.1 * (k + 1), 0.015) << k;
}

TEST(Sampler, TopPKeepsOnlyTheNucleusAndMinusInfinityIsNeverPicked) {
  // Probabilities 0.4, 0.3, 0.2, 0.1 (id order shuffled); top_p 0.6 keeps
  // the two most likely, whose mass first reaches 0.6.
  const std::vector<float> v = {std::log(2.0f), std::log(4.0f), std::log(1.0f), std::log(3.0f), kNegInf};
  SamplingOptions o;
  o.temperature = 1;
  o.top_p = 0.6;
  o.seed = 3;
  Sampler s(o);
  std::map<int32_t, int> count;
  for (int i = 0; i < 5000; ++i) ++count[s.sample(v)];
  EXPECT_EQ(count.size(), 2u);
  EXPECT_GT(count[1], 0);
  EXPECT_GT(count[3], 0);
  EXPECT_NEAR(count[1] / 5000.0, 4.0 / 7, 0.03);

  o.top_p = 1;
  Sampler all(o);
  for (int i = 0; i < 5000; ++i) EXPECT_NE(all.sample(v), 4);
}

TEST(Sampler, LowTemperatureConcentratesOnTheMaximum) {
  const std::vector<float> v = {1.0f, 1.5f, 0.2f};
  SamplingOptions o;
  o.temperature = 0.01;
  o.seed = 9;
  Sampler s(o);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(s.sample(v), 1);
}

}  // namespace
}  // namespace mb::inference
