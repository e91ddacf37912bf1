#pragma once
// Runner: something that answers a suite's prompts.
//
//   {type: native}                      the in-process CPU engine (default)
//   {type: command, command: "…",       any CLI; placeholders {model},
//    timeout_s: 600}                    {adapter}, {prompt_file},
//                                       {system_file}, {tools_file},
//                                       {max_tokens}; stdout is the response
//   {type: openai, url: …, model: …,    an OpenAI-compatible
//    timeout_s: 600,                    /v1/chat/completions endpoint, which
//    server: {command: [...],           the gate can start and stop itself
//             url: …,                   (server.url may stand in for url)
//             ready_timeout_s: 60}}
//
// A command is an argv list or a string split like a POSIX shell splits
// words (quotes and backslashes, no expansion); it never runs through a
// shell. A runner that cannot answer (no server, a timeout, a malformed
// reply, a command that fails) is an error, never a failed case.
//
// A Runner is used by one thread at a time.
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/result.h"
#include "gate/suite.h"

namespace mb::inference {
class Engine;
}

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

// Checks `config` strictly: the keys each type knows (unknown keys get a
// did-you-mean) and the type of every value. Errors are kInvalidInput and
// name the key path ("runner.server.ready_timeout_s"). A non-object or
// missing config means {type: native}.
Status validate_runner_config(const nlohmann::json& config);

// Validates `config` and builds the runner (loading the model for native).
Result<std::unique_ptr<Runner>> make_runner(const FileSystem& fs, const nlohmann::json& config,
                                            const RunnerTarget& target);

// A native runner on an engine the caller loaded (tests plug in a fake).
std::unique_ptr<Runner> make_native_runner(std::unique_ptr<inference::Engine> engine);

// The runner configuration as it enters the verdict's cache key: what
// decides the answers and nothing else. The type is always present, command
// strings become argv lists, the openai url loses a trailing "/" or "/v1",
// and timeouts are dropped (a timeout is an error, never a verdict). Keys
// are sorted (nlohmann::json). REQUIRES: validate_runner_config(config) ok.
nlohmann::json canonical_runner(const nlohmann::json& config);

}  // namespace mb::gate
