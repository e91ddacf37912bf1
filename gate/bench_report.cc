#include "gate/bench_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace mb::gate {

const char* gate_outcome_name(GateOutcome g) {
  switch (g) {
    case GateOutcome::kPassed:
      return "pass";
    case GateOutcome::kFailed:
      return "FAIL";
    case GateOutcome::kNone:
      break;
  }
  return "none";
}

std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = double(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, units[u]);
}

namespace {

std::string percent(double fraction) { return fmt::format("{:.0f}%", 100 * fraction); }

// Markdown cells must not contain a raw '|'.
std::string cell(std::string s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

std::string kl_cell(const std::optional<double>& kl) {
  if (!kl) return "—";
  return *kl == 0 ? std::string("0") : fmt::format("{:.2g}", *kl);
}

std::string agreement_cell(const std::optional<double>& a) {
  return a ? fmt::format("{:.1f}%", 100 * *a) : std::string("—");
}

nlohmann::json optional_json(const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }

}  // namespace

std::string render_markdown(const std::vector<BenchRow>& rows) {
  std::string out =
      "| config | bits | size | peak mem | load s | gen s | tok/s | accuracy | retention | mean KL | top-1 | gate |\n"
      "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n";
  for (const BenchRow& r : rows) {
    std::string gate = r.gate == GateOutcome::kNone ? "—" : gate_outcome_name(r.gate);
    out += fmt::format("| {} | {} | {} | {} | {:.3f} | {:.3f} | {:.1f} | {} ({}/{}) | {} | {} | {} | {} |\n",
                       cell(r.config), cell(r.bits), human_bytes(r.size_bytes), human_bytes(r.peak_memory_bytes),
                       r.load_seconds, r.avg_generation_seconds, r.tokens_per_second, percent(r.accuracy), r.passed,
                       r.total, r.retention ? fmt::format("{:.2f}", *r.retention) : std::string("—"),
                       kl_cell(r.mean_kl), agreement_cell(r.top1_agreement), gate);
  }
  return out;
}

nlohmann::json render_json(const std::vector<BenchRow>& rows) {
  nlohmann::json configs = nlohmann::json::array();
  for (const BenchRow& r : rows) {
    configs.push_back({{"config", r.config},
                       {"bits", r.bits},
                       {"size_bytes", r.size_bytes},
                       {"peak_memory_bytes", r.peak_memory_bytes},
                       {"load_seconds", r.load_seconds},
                       {"avg_generation_seconds", r.avg_generation_seconds},
                       {"tokens_per_second", r.tokens_per_second},
                       {"accuracy", r.accuracy},
                       {"passed", r.passed},
                       {"total", r.total},
                       {"accuracy_source", r.accuracy_source},
                       {"retention", r.retention ? nlohmann::json(*r.retention) : nlohmann::json(nullptr)},
                       {"mean_kl", optional_json(r.mean_kl)},
                       {"max_kl", optional_json(r.max_kl)},
                       {"top1_agreement", optional_json(r.top1_agreement)},
                       {"fidelity_source", r.fidelity_source},
                       {"gate", r.gate == GateOutcome::kNone     ? "none"
                                : r.gate == GateOutcome::kPassed ? "pass"
                                                                 : "fail"},
                       {"min_accuracy", r.min_accuracy ? nlohmann::json(*r.min_accuracy) : nlohmann::json(nullptr)},
                       {"failures", r.failures}});
  }
  return {{"version", 1}, {"configs", configs}};
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // Control characters are not allowed in XML 1.0.
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\t' || c == '\n') out += c;
    }
  }
  return out;
}

namespace {

// Chart geometry (SVG user units).
constexpr double kWidth = 720, kHeight = 440;
constexpr double kLeft = 70, kRight = 30, kTop = 40, kBottom = 60;
constexpr double kPlotW = kWidth - kLeft - kRight, kPlotH = kHeight - kTop - kBottom;

std::string num(double v) { return fmt::format("{:.1f}", v); }

bool row_ok(const BenchRow& r) {
  if (r.gate != GateOutcome::kNone) return r.gate == GateOutcome::kPassed;
  return r.accuracy >= r.min_accuracy.value_or(1.0);
}

}  // namespace

std::string render_svg(const std::vector<BenchRow>& rows) {
  // X axis: sizes span a factor of a few between 4-bit and float, so a log
  // scale keeps small artifacts apart once the spread exceeds 4×.
  double lo = 1, hi = 2;
  if (!rows.empty()) {
    lo = hi = double(std::max<uint64_t>(rows[0].size_bytes, 1));
    for (const BenchRow& r : rows) {
      lo = std::min(lo, double(std::max<uint64_t>(r.size_bytes, 1)));
      hi = std::max(hi, double(std::max<uint64_t>(r.size_bytes, 1)));
    }
  }
  const bool log_scale = hi / lo > 4;
  // Pad the range so no point sits on the frame.
  double x0, x1;
  if (log_scale) {
    x0 = std::log10(lo) - 0.05 * (std::log10(hi) - std::log10(lo));
    x1 = std::log10(hi) + 0.05 * (std::log10(hi) - std::log10(lo));
  } else {
    const double pad = std::max((hi - lo) * 0.1, hi * 0.05);
    x0 = std::max(0.0, lo - pad);
    x1 = hi + pad;
  }
  auto xpos = [&](double bytes) {
    const double v = log_scale ? std::log10(std::max(bytes, 1.0)) : bytes;
    return kLeft + (v - x0) / (x1 - x0) * kPlotW;
  };
  auto ypos = [&](double fraction) { return kTop + (1.0 - fraction) * kPlotH; };

  std::string svg = fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect x=\"0\" y=\"0\" width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n"
      "<text x=\"{2}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">Accuracy against size on disk</text>\n"
      "<rect x=\"{3}\" y=\"{4}\" width=\"{5}\" height=\"{6}\" fill=\"none\" stroke=\"#444\"/>\n",
      kWidth, kHeight, num(kWidth / 2), num(kLeft), num(kTop), num(kPlotW), num(kPlotH));

  // Y ticks every 20%.
  for (int p = 0; p <= 100; p += 20) {
    const double y = ypos(p / 100.0);
    svg += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#ddd\"/>\n", num(kLeft), num(y),
                       num(kLeft + kPlotW));
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}%</text>\n", num(kLeft - 6), num(y + 4), p);
  }
  // X ticks: five evenly spaced positions, labelled with the size there.
  for (int i = 0; i <= 4; ++i) {
    const double v = x0 + (x1 - x0) * i / 4.0;
    const double bytes = log_scale ? std::pow(10.0, v) : v;
    const double x = kLeft + kPlotW * i / 4.0;
    svg += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#444\"/>\n", num(x),
                       num(kTop + kPlotH), num(kTop + kPlotH + 5));
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", num(x), num(kTop + kPlotH + 19),
                       xml_escape(human_bytes(uint64_t(std::llround(bytes)))));
  }
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">size on disk ({} scale)</text>\n",
                     num(kLeft + kPlotW / 2), num(kHeight - 14), log_scale ? "log" : "linear");
  svg +=
      fmt::format("<text x=\"16\" y=\"{0}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {0})\">accuracy</text>\n",
                  num(kTop + kPlotH / 2));

  // The gate threshold: the strictest one among the configurations.
  std::optional<double> threshold;
  for (const BenchRow& r : rows)
    if (r.min_accuracy) threshold = std::max(threshold.value_or(0.0), *r.min_accuracy);
  if (threshold) {
    const double y = ypos(*threshold);
    svg += fmt::format(
        "<line class=\"threshold\" x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#c60\" "
        "stroke-dasharray=\"6 4\"/>\n",
        num(kLeft), num(y), num(kLeft + kPlotW));
    svg += fmt::format("<text x=\"{}\" y=\"{}\" fill=\"#c60\">gate {:.0f}%</text>\n", num(kLeft + 4), num(y + 14),
                       100 * *threshold);
  }

  // Points first, then labels: a label goes right of its point (left near
  // the right edge) and moves down a line while it would overlap a point or
  // a label already placed, since configurations often share a spot (two at 60%
  // with nearly the same size).
  struct Box {
    double x0, x1, y0, y1;
  };
  // Every point is placed before any label, so that a label never covers
  // another configuration's point either (the example's "adapter (100%)"
  // used to sit on fused_6bit's).
  std::vector<Box> boxes;
  for (const BenchRow& r : rows) {
    const double x = xpos(double(r.size_bytes)), y = ypos(r.accuracy);
    boxes.push_back({x - 7, x + 7, y - 7, y + 7});
  }
  std::string labels;
  for (const BenchRow& r : rows) {
    const double x = xpos(double(r.size_bytes)), y = ypos(r.accuracy);
    // The fidelity figures go in the point's tooltip: the labels stay short
    // enough not to collide.
    const std::string tip = r.mean_kl ? fmt::format("{}: mean KL {}, top-1 agreement {}", r.config, kl_cell(r.mean_kl),
                                                    agreement_cell(r.top1_agreement))
                                      : r.config;
    svg += fmt::format(
        "<circle class=\"point\" data-config=\"{}\" cx=\"{}\" cy=\"{}\" r=\"6\" fill=\"{}\" "
        "stroke=\"#222\"><title>{}</title></circle>\n",
        xml_escape(r.config), num(x), num(y), row_ok(r) ? "#2a2" : "#d22", xml_escape(tip));
    const std::string text = fmt::format("{} ({})", r.config, percent(r.accuracy));
    const double width = 7.0 * double(text.size());  // about 7 units a character at font-size 12
    const bool left = x + 10 + width > kLeft + kPlotW;
    Box b{left ? x - 10 - width : x + 10, left ? x - 10 : x + 10 + width, y - 6, y + 8};
    auto overlaps = [&](const Box& o) { return b.x0 < o.x1 && o.x0 < b.x1 && b.y0 < o.y1 && o.y0 < b.y1; };
    while (std::any_of(boxes.begin(), boxes.end(), overlaps)) b.y0 += 14, b.y1 += 14;
    boxes.push_back(b);
    labels += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"{}\">{}</text>\n", num(left ? b.x1 : b.x0),
                          num(b.y0 + 10), left ? "end" : "start", xml_escape(text));
  }
  svg += labels;
  // Legend.
  const double ly = kHeight - 14;
  svg += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"5\" fill=\"#2a2\"/><text x=\"{}\" y=\"{}\">passes</text>\n",
                     num(kWidth - 170), num(ly - 4), num(kWidth - 160), num(ly));
  svg += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"5\" fill=\"#d22\"/><text x=\"{}\" y=\"{}\">fails</text>\n",
                     num(kWidth - 100), num(ly - 4), num(kWidth - 90), num(ly));
  svg += "</svg>\n";
  return svg;
}

}  // namespace mb::gate
