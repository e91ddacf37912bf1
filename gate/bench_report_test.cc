// Rendering of the bench's table, JSON and chart.
#include "gate/bench_report.h"

#include <gtest/gtest.h>

#include <map>
#include <regex>

namespace mb::gate {
namespace {

BenchRow row(std::string name, uint64_t size, double accuracy, GateOutcome gate, std::optional<double> retention = {}) {
  BenchRow r;
  r.config = std::move(name);
  r.bits = "8";
  r.size_bytes = size;
  r.peak_memory_bytes = 13 << 20;
  r.load_seconds = 0.25;
  r.avg_generation_seconds = 0.5;
  r.tokens_per_second = 100;
  r.accuracy = accuracy;
  r.total = 5;
  r.passed = int(accuracy * 5 + 0.5);
  r.gate = gate;
  r.retention = retention;
  r.min_accuracy = 1.0;
  return r;
}

BenchRow with_fidelity(BenchRow r, double mean_kl, double top1) {
  r.mean_kl = mean_kl;
  r.max_kl = 10 * mean_kl;
  r.top1_agreement = top1;
  return r;
}

std::vector<BenchRow> sample() {
  return {row("base", 600'000, 0.6, GateOutcome::kNone),
          with_fidelity(row("fused_8bit", 1'050'000, 1.0, GateOutcome::kPassed, 0.89), 3.3e-6, 1.0),
          row("fused_f16", 1'900'000, 1.0, GateOutcome::kPassed),
          row("fused_4bit <&\"'>", 610'000, 0.6, GateOutcome::kFailed, -0.12)};
}

TEST(BenchMarkdown, OneRowPerConfigWithEveryColumn) {
  const std::string md = render_markdown(sample());
  EXPECT_EQ(
      md.substr(0, md.find('\n')),
      "| config | bits | size | peak mem | load s | gen s | tok/s | accuracy | retention | mean KL | top-1 | gate |");
  EXPECT_NE(
      md.find("| fused_8bit | 8 | 1.0 MB | 13.0 MB | 0.250 | 0.500 | 100.0 | 100% (5/5) | 0.89 | 3.3e-06 | 100.0% "
              "| pass |"),
      std::string::npos)
      << md;
  EXPECT_NE(md.find("| base | 8 | 585.9 KB | 13.0 MB | 0.250 | 0.500 | 100.0 | 60% (3/5) | — | — | — | — |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| -0.12 | — | — | FAIL |"), std::string::npos);
  EXPECT_EQ(std::count(md.begin(), md.end(), '\n'), 2 + 4);
}

TEST(BenchMarkdown, APipeInANameDoesNotBreakTheTable) {
  const std::string md = render_markdown({row("a|b", 1, 1, GateOutcome::kNone)});
  EXPECT_NE(md.find("| a\\|b |"), std::string::npos);
}

TEST(BenchJson, CarriesTheMeasuredNumbers) {
  auto j = render_json(sample());
  EXPECT_EQ(j["version"], 1);
  ASSERT_EQ(j["configs"].size(), 4u);
  EXPECT_EQ(j["configs"][1]["config"], "fused_8bit");
  EXPECT_EQ(j["configs"][1]["size_bytes"], 1'050'000);
  EXPECT_DOUBLE_EQ(j["configs"][1]["retention"].get<double>(), 0.89);
  EXPECT_TRUE(j["configs"][0]["retention"].is_null());
  EXPECT_DOUBLE_EQ(j["configs"][1]["mean_kl"].get<double>(), 3.3e-6);
  EXPECT_DOUBLE_EQ(j["configs"][1]["max_kl"].get<double>(), 3.3e-5);
  EXPECT_DOUBLE_EQ(j["configs"][1]["top1_agreement"].get<double>(), 1.0);
  EXPECT_TRUE(j["configs"][0]["mean_kl"].is_null());
  EXPECT_EQ(j["configs"][0]["gate"], "none");
  EXPECT_EQ(j["configs"][3]["gate"], "fail");
}

TEST(BenchSvg, IsWellFormedAndEscapesLabels) {
  const std::string svg = render_svg(sample());
  // Balanced tags: every opening tag that is not self-closing has a closing one.
  std::regex tag(R"(<(/?)([a-zA-Z]+)[^>]*?(/?)>)");
  std::vector<std::string> stack;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), tag); it != std::sregex_iterator(); ++it) {
    const auto& m = *it;
    if (m[1] == "/") {
      ASSERT_FALSE(stack.empty()) << "unexpected </" << m[2] << ">";
      EXPECT_EQ(stack.back(), m[2].str());
      stack.pop_back();
    } else if (m[3] != "/") {
      stack.push_back(m[2]);
    }
  }
  EXPECT_TRUE(stack.empty());
  // The hostile name appears only escaped.
  EXPECT_EQ(svg.find("<&"), std::string::npos);
  EXPECT_NE(svg.find("fused_4bit &lt;&amp;&quot;&apos;&gt;"), std::string::npos);
  // Every '&' starts an entity.
  for (size_t i = svg.find('&'); i != std::string::npos; i = svg.find('&', i + 1))
    EXPECT_TRUE(std::regex_search(svg.substr(i, 6), std::regex("^&(amp|lt|gt|quot|apos);"))) << svg.substr(i, 10);
  EXPECT_NE(svg.find("class=\"threshold\""), std::string::npos);
  EXPECT_NE(svg.find("size on disk"), std::string::npos);
  EXPECT_NE(svg.find("<title>fused_8bit: mean KL 3.3e-06, top-1 agreement 100.0%</title>"), std::string::npos) << svg;
}

TEST(BenchSvg, PointPositionsFollowSizeAndAccuracy) {
  const std::string svg = render_svg(sample());
  std::map<std::string, std::pair<double, double>> at;
  std::map<std::string, std::string> fill;
  std::regex point(
      R"re(<circle class="point" data-config="([^"]*)" cx="([0-9.]+)" cy="([0-9.]+)" r="6" fill="([^"]+)")re");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), point); it != std::sregex_iterator(); ++it) {
    at[(*it)[1]] = {std::stod((*it)[2]), std::stod((*it)[3])};
    fill[(*it)[1]] = (*it)[4];
  }
  ASSERT_EQ(at.size(), 4u);
  // Larger on disk → further right; more accurate → higher (smaller y).
  EXPECT_LT(at["base"].first, at["fused_8bit"].first);
  EXPECT_LT(at["fused_8bit"].first, at["fused_f16"].first);
  EXPECT_LT(at["fused_8bit"].second, at["base"].second);
  EXPECT_DOUBLE_EQ(at["fused_8bit"].second, at["fused_f16"].second);
  EXPECT_NE(fill["fused_8bit"], fill["base"]);
  EXPECT_EQ(fill["fused_8bit"], fill["fused_f16"]);
  EXPECT_EQ(fill["base"], fill["fused_4bit &lt;&amp;&quot;&apos;&gt;"]);
}

// The example's configurations, several near one spot: no label may cover a
// point or another label (the chart once drew "adapter (100%)" over fused_6bit).
TEST(BenchSvg, LabelsCoverNoPointAndNoOtherLabel) {
  std::vector<BenchRow> rows = {row("base", 598'711, 0.6, GateOutcome::kNone),
                                row("adapter", 916'628, 1.0, GateOutcome::kPassed),
                                row("fused_f16", 1'880'000, 1.0, GateOutcome::kPassed),
                                row("fused_8bit", 1'057'410, 1.0, GateOutcome::kPassed, 0.9),
                                row("fused_6bit", 828'034, 1.0, GateOutcome::kPassed, 0.6),
                                row("fused_auto", 713'346, 1.0, GateOutcome::kPassed, 0.16),
                                row("fused_4bit", 598'658, 0.6, GateOutcome::kFailed, -0.11)};
  const std::string svg = render_svg(rows);
  struct Box {
    double x0, x1, y0, y1;
  };
  std::vector<Box> points, labels;
  std::regex point(R"re(<circle class="point" data-config="[^"]*" cx="([0-9.]+)" cy="([0-9.]+)" r="6")re");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), point); it != std::sregex_iterator(); ++it) {
    const double x = std::stod((*it)[1]), y = std::stod((*it)[2]);
    points.push_back({x - 6, x + 6, y - 6, y + 6});
  }
  std::regex label(R"re(<text x="([0-9.]+)" y="([0-9.]+)" text-anchor="(start|end)">([^<]*\([0-9]+%\))</text>)re");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), label); it != std::sregex_iterator(); ++it) {
    const double x = std::stod((*it)[1]), y = std::stod((*it)[2]);
    const double w = 6.5 * double((*it)[4].length());  // font-size 12 sans: under 7 units a character
    labels.push_back((*it)[3] == "start" ? Box{x, x + w, y - 9, y + 2} : Box{x - w, x, y - 9, y + 2});
  }
  ASSERT_EQ(points.size(), rows.size());
  ASSERT_EQ(labels.size(), rows.size());
  auto overlap = [](const Box& a, const Box& b) { return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1; };
  for (size_t i = 0; i < labels.size(); ++i) {
    for (size_t j = 0; j < points.size(); ++j)
      EXPECT_FALSE(overlap(labels[i], points[j])) << i << " covers point " << j;
    for (size_t j = i + 1; j < labels.size(); ++j) EXPECT_FALSE(overlap(labels[i], labels[j])) << i << " and " << j;
  }
}

TEST(BenchSvg, IsDeterministicAndHandlesNoRows) {
  EXPECT_EQ(render_svg(sample()), render_svg(sample()));
  const std::string empty = render_svg({});
  EXPECT_NE(empty.find("</svg>"), std::string::npos);
  EXPECT_EQ(empty.find("nan"), std::string::npos);
  EXPECT_EQ(empty.find("inf"), std::string::npos);
}

TEST(HumanBytes, BinaryUnits) {
  EXPECT_EQ(human_bytes(512), "512 B");
  EXPECT_EQ(human_bytes(1536), "1.5 KB");
  EXPECT_EQ(human_bytes(3u << 20), "3.0 MB");
}

}  // namespace
}  // namespace mb::gate
