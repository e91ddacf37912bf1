#pragma once
// Helpers for end-to-end tests: run the real `modelbuild` binary in a
// temporary project directory and look at its exit status and output.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/subprocess.h"
#include "base/temp_dir.h"
#include "base/test_paths.h"

namespace mb::e2e {

inline fs::path binary() { return test::modelbuild_binary(); }
inline fs::path source_dir() { return test::source_dir(); }

struct CliRun {
  int code = -1;
  std::string output;  // stdout + stderr
  std::string out;     // stdout only
};

inline CliRun modelbuild(const fs::path& dir, std::vector<std::string> args,
                         std::chrono::seconds timeout = std::chrono::seconds(300)) {
  args.insert(args.begin(), binary().string());
  SubprocessOptions opts;
  opts.cwd = dir;
  opts.timeout = timeout;
  opts.env["MODELBUILD_CACHE"] = "";
  auto r = run_subprocess(args, opts);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
  if (!r.ok()) return {};
  EXPECT_FALSE(r->timed_out) << "modelbuild timed out: " << r->output;
  return CliRun{r->exit_code, r->output, r->stdout_text};
}

inline void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A copy of examples/tiny's sources into `to`, without any build outputs or
// cache a developer left there.
inline void copy_tiny_example(const fs::path& to) {
  const fs::path from = source_dir() / "examples" / "tiny";
  for (const char* part : {"modelbuild.yaml", "suite.yaml", "models", "adapters", "tokenizer"})
    fs::copy(from / part, to / part, fs::copy_options::recursive);
}

}  // namespace mb::e2e
