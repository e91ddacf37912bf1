#pragma once
// Subprocess: run a program with an argv (never through a shell unless the
// caller asks for /bin/sh -c), capture its combined output, enforce a
// timeout. Used by command steps and the gate's command runner.
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/result.h"

namespace mb {

struct SubprocessOptions {
  fs::path cwd;                            // empty = inherit
  std::map<std::string, std::string> env;  // added to the environment
  std::chrono::milliseconds timeout{0};    // 0 = none
  std::string stdin_text;                  // fed to the child's stdin
  size_t max_output = 16 << 20;            // bytes of output kept
};

struct SubprocessResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  bool timed_out = false;
  std::string output;       // stdout and stderr interleaved
  std::string stdout_text;  // stdout only
};

// Errc::kNotFound when argv[0] cannot be executed; a non-zero exit is not an
// error here (look at exit_code).
Result<SubprocessResult> run_subprocess(const std::vector<std::string>& argv, const SubprocessOptions& options);

// Splits a command line into words the way a POSIX shell does for quotes and
// backslashes (no expansion). Errc::kInvalidInput on an unterminated quote.
Result<std::vector<std::string>> split_command_line(std::string_view line);

// The last `lines` lines of `text`, for error messages.
std::string tail_lines(const std::string& text, int lines);

}  // namespace mb
