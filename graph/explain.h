#pragma once
// ExplainLog: what each step slot was last built from, so that a stale step
// can be explained in one sentence per difference ("parameter bits changed:
// 8 → 6", "input adapter.0 changed: adapters.safetensors 3f2a… → 9c41…").
//
// Keys are hashes and say nothing by themselves (Evan Martin's complaint
// about hashed build keys); this log is the "why". It lives in the project's
// state directory as one JSON file, loaded whole and rewritten atomically
// only when something changed. Thread-safe.
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/reporter.h"
#include "cache/action_key.h"

namespace mb {

// One input of a recorded step: its digest and, for a source directory, the
// digest of every file in it (so a change can be pinned to a file).
struct ExplainInput {
  std::string role;
  Digest digest;
  std::string origin;                   // "source NAME" or "step LABEL"
  std::map<std::string, Digest> files;  // relative path -> digest (sources only)
};

struct ExplainRecord {
  std::string kind;
  int algorithm_version = 0;
  nlohmann::json params;
  std::vector<ExplainInput> inputs;
  Digest key;
};

class ExplainLog {
 public:
  ExplainLog(FileSystem& fs, fs::path file, Reporter& reporter);
  void load();
  Status save();

  // Sentences saying how `now` differs from what `slot` was last built from,
  // or "never built" when there is no record.
  std::vector<std::string> explain(const std::string& slot, const ExplainRecord& now) const;
  void record(const std::string& slot, ExplainRecord record);

 private:
  FileSystem& m_fs;
  fs::path m_file;
  Reporter& m_reporter;
  mutable std::mutex m_mu;
  std::map<std::string, ExplainRecord> m_records;
  bool m_dirty = false;
};

}  // namespace mb
