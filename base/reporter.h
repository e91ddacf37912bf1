#pragma once
// Reporter: the one channel for user-facing output.
//
// The engine, rules and gate report what happens as Events; a Reporter turns
// them into a live terminal bar, plain log lines, or JSON lines (--json).
// Tests use a RecordingReporter and stay quiet. Implementations must be
// thread-safe: steps report from worker threads.
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mb {

enum class Level { kDebug, kInfo, kWarn, kError };

enum class EventKind {
  kMessage,       // free text at a level
  kStepStarted,   // step began running
  kStepFinished,  // step succeeded (fields: seconds, cached)
  kStepFailed,    // step failed (message: why)
  kStepCached,    // step result reused from the cache
  kProgress,      // fields: done, total, unit ("bytes", "tensors", "cases")
  kExplain,       // why a step is stale (one sentence)
};

struct Event {
  EventKind kind = EventKind::kMessage;
  Level level = Level::kInfo;
  std::string step;     // step id, e.g. "fuse:fused_8bit", may be empty
  std::string message;  // human sentence
  nlohmann::json fields = nlohmann::json::object();
};

class Reporter {
 public:
  virtual ~Reporter() = default;
  virtual void report(const Event& event) = 0;

  void info(std::string msg) { report({EventKind::kMessage, Level::kInfo, "", std::move(msg), {}}); }
  void warn(std::string msg) { report({EventKind::kMessage, Level::kWarn, "", std::move(msg), {}}); }
  void error(std::string msg) { report({EventKind::kMessage, Level::kError, "", std::move(msg), {}}); }
  void debug(std::string msg) { report({EventKind::kMessage, Level::kDebug, "", std::move(msg), {}}); }
  void progress(const std::string& step, uint64_t done, uint64_t total, const char* unit) {
    report({EventKind::kProgress, Level::kDebug, step, "", {{"done", done}, {"total", total}, {"unit", unit}}});
  }
};

enum class ReporterStyle { kAuto, kTerminal, kPlain, kJson };

// kAuto picks kTerminal when stderr is a tty, kPlain otherwise.
std::unique_ptr<Reporter> make_reporter(ReporterStyle style, Level min_level);

// Keeps every event; for tests.
class RecordingReporter : public Reporter {
 public:
  void report(const Event& event) override {
    std::lock_guard<std::mutex> lock(m_mu);
    m_events.push_back(event);
  }
  std::vector<Event> events() const {
    std::lock_guard<std::mutex> lock(m_mu);
    return m_events;
  }

 private:
  mutable std::mutex m_mu;
  std::vector<Event> m_events;
};

class NullReporter : public Reporter {
 public:
  void report(const Event&) override {}
};

}  // namespace mb
