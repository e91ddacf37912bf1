#pragma once
// Drives the llama.cpp peer (tests/llama/README.md) from GoogleTest: the
// node script check_gguf.mjs (llama.cpp's inference library through the
// pinned node-llama-cpp package) and our C harness llama_quantize_ref (its
// quantizer, llama_model_quantize). A missing node, package or harness is a
// test failure naming what to install, never a skip.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/subprocess.h"
#include "base/test_paths.h"

namespace mb::llama_test {

inline fs::path llama_dir() { return test::source_dir() / "tests" / "llama"; }

// The harness is built beside this test binary, in llama/
// (tests/llama/CMakeLists.txt); MB_LLAMA_QUANTIZE_REF overrides that.
inline fs::path quantize_ref_binary() {
  if (const char* env = std::getenv("MB_LLAMA_QUANTIZE_REF"); env && *env) return env;
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return self.parent_path() / "llama" / "llama_quantize_ref";
}

struct PeerRun {
  int code = -1;
  std::string output;  // stdout + stderr
  std::string out;     // stdout
};

inline PeerRun run(std::vector<std::string> argv, int timeout_seconds) {
  SubprocessOptions opts;
  opts.timeout = std::chrono::seconds(timeout_seconds);
  auto r = run_subprocess(argv, opts);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
  if (!r.ok()) return {};
  EXPECT_FALSE(r->timed_out) << argv[0] << " timed out: " << r->output;
  return {r->exit_code, r->output, r->stdout_text};
}

// node tests/llama/check_gguf.mjs ARGS...
inline PeerRun check_gguf(std::vector<std::string> args) {
  args.insert(args.begin(), {test::node_executable(), (llama_dir() / "check_gguf.mjs").string()});
  return run(args, 300);
}

// llama_quantize_ref quantize IN OUT TYPE: llama.cpp's quantizer, no imatrix.
inline PeerRun llama_quantize(const fs::path& in, const fs::path& out, const std::string& type) {
  return run({quantize_ref_binary().string(), "quantize", in.string(), out.string(), type, "2"}, 300);
}

// Fails the calling test (from SetUp) unless node, the package and the harness are there.
inline void require_peer() {
  ASSERT_TRUE(!test::node_executable().empty() && fs::exists(test::node_executable()))
      << "node was not found when this build was configured; run scripts/install-deps.sh --test";
  ASSERT_TRUE(fs::exists(llama_dir() / "node_modules" / "@node-llama-cpp" / "linux-x64" / "bins"))
      << "llama.cpp's prebuilt library (node-llama-cpp) is not installed in " << llama_dir()
      << "; run scripts/install-deps.sh --test";
  ASSERT_TRUE(fs::exists(quantize_ref_binary()))
      << "no " << quantize_ref_binary() << ": tests/llama was not installed when this build was configured; run "
      << "scripts/install-deps.sh --test, then re-run cmake";
}

}  // namespace mb::llama_test
