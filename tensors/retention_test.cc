#include "tensors/retention.h"

#include <gtest/gtest.h>

#include <cmath>

namespace mb {
namespace {

TEST(RetentionSums, PerfectAndLostAndPartial) {
  const std::vector<float> w0 = {1, 2, 3, 4};
  const std::vector<float> target = {1.5f, 2, 2.5f, 4};  // ΔW = (.5, 0, -.5, 0)
  RetentionSums same;
  same.add(w0, target, target);
  TensorRetention t{"x.weight", same};
  EXPECT_EQ(*t.retained(), 1.0);
  EXPECT_DOUBLE_EQ(*t.cosine(), 1.0);

  RetentionSums lost;  // the result is the base: the change vanished
  lost.add(w0, target, w0);
  t.sums = lost;
  EXPECT_EQ(*t.retained(), 0.0);
  EXPECT_EQ(*t.cosine(), 0.0);

  RetentionSums half;  // half of the change survives: error = ΔW/2
  const std::vector<float> halfway = {1.25f, 2, 2.75f, 4};
  half.add(w0, target, halfway);
  t.sums = half;
  EXPECT_DOUBLE_EQ(*t.retained(), 0.5);
  EXPECT_DOUBLE_EQ(*t.cosine(), 1.0);

  RetentionSums opposite;  // the result moved the other way: worse than nothing
  const std::vector<float> away = {0.5f, 2, 3.5f, 4};
  opposite.add(w0, target, away);
  t.sums = opposite;
  EXPECT_DOUBLE_EQ(*t.retained(), -1.0);
  EXPECT_DOUBLE_EQ(*t.cosine(), -1.0);
}

TEST(RetentionSums, ZeroDeltaIsUndefinedAndNullInJson) {
  const std::vector<float> w = {1, 2};
  RetentionSums s;
  s.add(w, w, w);
  RetentionReport report;
  report.what = "8-bit quantization";
  report.add_tensor({"a.weight", s});
  EXPECT_FALSE(report.retained().has_value());
  const nlohmann::json j = report.to_json();
  EXPECT_TRUE(j["retained"].is_null());
  EXPECT_TRUE(j["tensors"][0]["retained"].is_null());
  EXPECT_NE(report.verdict().find("all zero"), std::string::npos);
}

TEST(RetentionReport, OverallIsSumOfSquaresNotMeanOfRatios) {
  // Tensor a keeps everything (|ΔW|² = 100), tensor b nothing (|ΔW|² = 1).
  RetentionReport r;
  r.what = "4-bit in-place fusion";
  r.inplace = true;
  RetentionSums a, b;
  a.add(std::vector<float>{0}, std::vector<float>{10}, std::vector<float>{10});
  b.add(std::vector<float>{0}, std::vector<float>{1}, std::vector<float>{0});
  r.add_tensor({"z.weight", a});
  r.add_tensor({"b.weight", b});
  EXPECT_EQ(r.tensors[0].name, "b.weight");  // kept sorted
  // 1 - sqrt(1)/sqrt(101)
  EXPECT_DOUBLE_EQ(*r.retained(), 1.0 - 1.0 / std::sqrt(101.0));
  const nlohmann::json j = r.to_json();
  EXPECT_EQ(j["tensors"].size(), 2u);
  EXPECT_EQ(j["tensors"][1]["elements"], 1);
  EXPECT_DOUBLE_EQ(j["delta_norm"].get<double>(), std::sqrt(101.0));
}

TEST(RetentionReport, VerdictSaysWhatToDo) {
  RetentionReport r;
  r.what = "4-bit in-place fusion";
  r.inplace = true;
  RetentionSums s;
  // 3% retained: error norm 0.97 of the delta norm.
  s.add(std::vector<float>{0}, std::vector<float>{1}, std::vector<float>{0.03f});
  r.add_tensor({"w.weight", s});
  const std::string v = r.verdict();
  EXPECT_NE(v.find("4-bit in-place fusion kept 3% of the adapter's weight change (retention 0.03)"), std::string::npos)
      << v;
  EXPECT_NE(v.find("behave like the base model"), std::string::npos) << v;
  EXPECT_NE(v.find("mode: dequantize"), std::string::npos) << v;

  RetentionReport good;
  good.what = "8-bit quantization";
  RetentionSums g;
  g.add(std::vector<float>{0}, std::vector<float>{1}, std::vector<float>{0.98f});
  good.add_tensor({"w.weight", g});
  EXPECT_EQ(good.verdict(), "8-bit quantization kept 98% of the adapter's weight change (retention 0.98).");

  // 8-bit quantization typically keeps ~0.9: said plainly, without alarm.
  RetentionReport eight;
  eight.what = "8-bit quantization";
  eight.bits = 8;
  RetentionSums e;
  e.add(std::vector<float>{0}, std::vector<float>{1}, std::vector<float>{0.89f});
  eight.add_tensor({"w.weight", e});
  EXPECT_EQ(eight.verdict(),
            "8-bit quantization kept 89% of the adapter's weight change (retention 0.89): the fused model keeps most "
            "of the adapter's weight change.");

  // The advice follows the step: more bits for a 4-bit quantization, float
  // for an 8-bit one.
  RetentionReport four;
  four.what = "4-bit quantization";
  four.bits = 4;
  RetentionSums h;
  h.add(std::vector<float>{0}, std::vector<float>{1}, std::vector<float>{0.6f});
  four.add_tensor({"w.weight", h});
  EXPECT_EQ(four.verdict(),
            "4-bit quantization kept 60% of the adapter's weight change (retention 0.60): the fused model keeps part "
            "of what the adapter learned; check it against the gate. Quantize to 8 or 6 bits, or keep the fused "
            "model in float.");
  four.bits = 8;
  four.what = "8-bit quantization";
  EXPECT_NE(four.verdict().find("Keep the fused model in float"), std::string::npos) << four.verdict();

  // Below 0.3 the adapter is as good as gone.
  RetentionReport lost;
  lost.what = "6-bit quantization";
  lost.bits = 6;
  RetentionSums l;
  l.add(std::vector<float>{0}, std::vector<float>{1}, std::vector<float>{0.2f});
  lost.add_tensor({"w.weight", l});
  EXPECT_NE(lost.verdict().find("kept 20%"), std::string::npos) << lost.verdict();
  EXPECT_NE(lost.verdict().find("will behave like the base model. Quantize to 8 bits, or keep"), std::string::npos)
      << lost.verdict();
}

}  // namespace
}  // namespace mb
