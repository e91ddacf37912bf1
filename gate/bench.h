#pragma once
// The bench's measurements of one configuration: disk size, and a suite run
// in a forked child process so that its peak memory (ru_maxrss from wait4)
// belongs to that configuration alone and not to whatever the parent or an
// earlier configuration loaded.
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "base/fs.h"
#include "base/result.h"
#include "gate/gate.h"
#include "gate/runner.h"
#include "gate/suite.h"

namespace mb::gate {

// Total size of the regular files under `paths` (files or directories),
// counting a file reached through several hard links (or listed twice) once.
// Symlinks are followed, since materialized artifacts may be links into the
// cache. Uses the OS directly: the FileSystem seam has no inode numbers.
Result<uint64_t> disk_size(const std::vector<fs::path>& paths);

struct BenchMeasurement {
  GateReport report;               // the fastest run's timings; its verdicts
  uint64_t peak_memory_bytes = 0;  // the largest child's max RSS
};

// Runs the suite against `target` `runs` times (at least once), each in a
// fresh child process that loads the model, asks every case and sends its
// report back through a pipe. Load and generation times are the fastest
// run's, so noise from the other agents on the machine counts less. A runner
// error in the child comes back as the same error; a crashed child is
// kStepFailed naming the model.
Result<BenchMeasurement> measure_in_child(const FileSystem& fs, const Suite& suite, const RunnerTarget& target,
                                          const nlohmann::json& runner_config, int runs);

// A clean process to fork the measuring children from (Android's "zygote"):
// start() forks it before the bench builds anything, so every configuration's
// child begins with the same small resident set, whatever the build later
// loaded into the parent (a forked child's max RSS counts its parent's pages
// at fork time). measure() sends it one request and waits for the answer.
// Not thread-safe; one request at a time.
class BenchZygote {
 public:
  static Result<std::unique_ptr<BenchZygote>> start();
  ~BenchZygote();
  BenchZygote(const BenchZygote&) = delete;
  BenchZygote& operator=(const BenchZygote&) = delete;

  // Loads the suite from `suite_file` in the zygote, then measure_in_child().
  Result<BenchMeasurement> measure(const fs::path& suite_file, const RunnerTarget& target,
                                   const nlohmann::json& runner_config, int runs);

 private:
  BenchZygote(int pid, int to_zygote, int from_zygote) : m_pid(pid), m_to(to_zygote), m_from(from_zygote) {}
  int m_pid;
  int m_to;    // requests, one JSON line each
  int m_from;  // replies, one JSON line each
};

}  // namespace mb::gate
