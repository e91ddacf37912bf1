#pragma once
// Runner: something that answers a suite's prompts.
//
//   {type: native}                      the in-process CPU engine (default)
//   {type: command, command: "…"}       any CLI; placeholders {model},
//                                       {prompt_file}, {system_file},
//                                       {tools_file}, {max_tokens}; stdout is
//                                       the response
//   {type: openai, url: …, model: …,    an OpenAI-compatible
//    server: {command: [...],           /v1/chat/completions endpoint, which
//             ready_timeout_s: 60}}     the gate can start and stop itself
//
// A runner that cannot answer (no server, a timeout, a malformed reply, a
// command that fails) is an error, never a failed case.
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "base/result.h"
#include "gate/suite.h"

namespace mb::gate {

struct RunnerReply {
  std::string text;
  nlohmann::json tool_calls;  // structured calls (openai runner), else null
  double seconds = 0;
  int completion_tokens = 0;
};

class Runner {
 public:
  virtual ~Runner() = default;
  virtual Result<RunnerReply> respond(const Suite& suite, const Case& c) = 0;
  virtual double load_seconds() const { return 0; }
  virtual uint64_t peak_memory_bytes() const { return 0; }
};

struct RunnerTarget {
  fs::path model_dir;
  std::vector<fs::path> adapters;  // applied at run time
  int threads = 0;
};

// Validates `config` and builds the runner (loading the model for native).
Result<std::unique_ptr<Runner>> make_runner(const FileSystem& fs, const nlohmann::json& config,
                                            const RunnerTarget& target);

// The runner configuration as it enters the verdict's cache key: defaults
// filled in, keys sorted.
nlohmann::json canonical_runner(const nlohmann::json& config);

}  // namespace mb::gate
