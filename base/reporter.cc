// Reporters: terminal (live bar), plain log lines (spdlog), JSON lines.
#include "base/reporter.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>

namespace mb {
namespace {

spdlog::level::level_enum to_spdlog(Level level) {
  switch (level) {
    case Level::kDebug:
      return spdlog::level::debug;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kWarn:
      return spdlog::level::warn;
    case Level::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

std::string human_bytes(double n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (n >= 1024 && u < 4) {
    n /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", n, units[u]);
}

std::string progress_text(const Event& e) {
  uint64_t done = e.fields.value("done", uint64_t{0});
  uint64_t total = e.fields.value("total", uint64_t{0});
  std::string unit = e.fields.value("unit", std::string());
  if (unit == "bytes") return fmt::format("{} / {}", human_bytes(double(done)), human_bytes(double(total)));
  return fmt::format("{} / {} {}", done, total, unit);
}

// Plain log lines through spdlog, to stderr. Progress of long work becomes a
// log line every few seconds so CI logs stay readable.
class PlainReporter : public Reporter {
 public:
  explicit PlainReporter(Level min_level) {
    m_log = spdlog::stderr_color_mt("modelbuild-" + std::to_string(reinterpret_cast<uintptr_t>(this)));
    m_log->set_pattern("%^%l%$ %v");
    m_log->set_level(to_spdlog(min_level));
  }
  ~PlainReporter() override { spdlog::drop(m_log->name()); }

  void report(const Event& e) override {
    std::lock_guard<std::mutex> lock(m_mu);
    std::string prefix = e.step.empty() ? "" : "[" + e.step + "] ";
    switch (e.kind) {
      case EventKind::kProgress: {
        // Work that finishes within kQuietProgress stays quiet (-v shows
        // every 10%); longer work logs a line every kQuietProgress and
        // its completion, so a CI log shows that a 10 GB hash is alive.
        uint64_t total = e.fields.value("total", uint64_t{0});
        uint64_t done = e.fields.value("done", uint64_t{0});
        auto now = std::chrono::steady_clock::now();
        auto it = m_progress.try_emplace(e.step, ProgressLog{now, -1, false}).first;
        ProgressLog& p = it->second;
        int tenth = total ? int(done * 10 / total) : 10;
        if (done >= total) {
          m_log->log(to_spdlog(p.shown ? Level::kInfo : Level::kDebug), "{}{}", prefix, progress_text(e));
          m_progress.erase(it);
        } else if (now - p.since >= kQuietProgress) {
          m_log->log(to_spdlog(Level::kInfo), "{}{}", prefix, progress_text(e));
          p.since = now;
          p.shown = true;
          p.last_tenth = tenth;
        } else if (tenth > p.last_tenth) {
          m_log->log(to_spdlog(Level::kDebug), "{}{}", prefix, progress_text(e));
          p.last_tenth = tenth;
        }
        return;
      }
      case EventKind::kStepStarted:
        m_log->log(to_spdlog(e.level), "{}{}", prefix, e.message.empty() ? "started" : e.message);
        return;
      case EventKind::kStepFinished:
        m_log->log(to_spdlog(e.level), "{}{}", prefix, e.message.empty() ? "done" : e.message);
        return;
      case EventKind::kStepCached:
        m_log->log(to_spdlog(e.level), "{}{}", prefix, e.message.empty() ? "cached" : e.message);
        return;
      case EventKind::kStepFailed:
        m_log->error("{}{}", prefix, e.message);
        return;
      case EventKind::kExplain:
        m_log->log(to_spdlog(e.level), "{}{}", prefix, e.message);
        return;
      case EventKind::kMessage:
        m_log->log(to_spdlog(e.level), "{}{}", prefix, e.message);
        return;
    }
  }

 private:
  std::mutex m_mu;
  std::shared_ptr<spdlog::logger> m_log;  // filters by level itself
  static constexpr std::chrono::seconds kQuietProgress{2};
  struct ProgressLog {
    std::chrono::steady_clock::time_point since;  // started, or last logged at info
    int last_tenth = -1;
    bool shown = false;  // logged at info at least once
  };
  std::map<std::string, ProgressLog> m_progress;
};

// A live status line on a terminal: messages scroll above it.
class TerminalReporter : public Reporter {
 public:
  explicit TerminalReporter(Level min_level) : m_plain(min_level) {}
  ~TerminalReporter() override { clear_line(); }

  void report(const Event& e) override {
    if (e.kind == EventKind::kProgress) {
      std::lock_guard<std::mutex> lock(m_mu);
      uint64_t total = e.fields.value("total", uint64_t{0});
      uint64_t done = e.fields.value("done", uint64_t{0});
      int width = 24;
      int filled = total ? int(double(done) / double(total) * width) : width;
      std::string bar(size_t(filled), '#');
      bar.resize(size_t(width), '.');
      std::fprintf(stderr, "\r\033[K[%s] %s %s", bar.c_str(), e.step.c_str(), progress_text(e).c_str());
      std::fflush(stderr);
      m_bar_shown = true;
      return;
    }
    {
      std::lock_guard<std::mutex> lock(m_mu);
      clear_line();
    }
    m_plain.report(e);
  }

 private:
  void clear_line() {
    if (m_bar_shown) {
      std::fprintf(stderr, "\r\033[K");
      m_bar_shown = false;
    }
  }
  PlainReporter m_plain;  // filters by level itself
  std::mutex m_mu;
  bool m_bar_shown = false;
};

const char* kind_name(EventKind kind) {
  switch (kind) {
    case EventKind::kMessage:
      return "message";
    case EventKind::kStepStarted:
      return "step_started";
    case EventKind::kStepFinished:
      return "step_finished";
    case EventKind::kStepFailed:
      return "step_failed";
    case EventKind::kStepCached:
      return "step_cached";
    case EventKind::kProgress:
      return "progress";
    case EventKind::kExplain:
      return "explain";
  }
  return "?";
}

const char* level_name(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "?";
}

// One JSON object per line on stdout, for machines.
class JsonReporter : public Reporter {
 public:
  explicit JsonReporter(Level min_level) : m_min(min_level) {}
  void report(const Event& e) override {
    if (e.kind == EventKind::kMessage && e.level < m_min) return;
    nlohmann::json j = {{"event", kind_name(e.kind)}, {"level", level_name(e.level)}};
    if (!e.step.empty()) j["step"] = e.step;
    if (!e.message.empty()) j["message"] = e.message;
    if (!e.fields.empty()) j["fields"] = e.fields;
    std::lock_guard<std::mutex> lock(m_mu);
    std::fprintf(stdout, "%s\n", j.dump().c_str());
    std::fflush(stdout);
  }

 private:
  Level m_min;
  std::mutex m_mu;
};

}  // namespace

std::unique_ptr<Reporter> make_reporter(ReporterStyle style, Level min_level) {
  if (style == ReporterStyle::kAuto) style = ::isatty(2) ? ReporterStyle::kTerminal : ReporterStyle::kPlain;
  switch (style) {
    case ReporterStyle::kTerminal:
      return std::make_unique<TerminalReporter>(min_level);
    case ReporterStyle::kJson:
      return std::make_unique<JsonReporter>(min_level);
    default:
      return std::make_unique<PlainReporter>(min_level);
  }
}

}  // namespace mb
