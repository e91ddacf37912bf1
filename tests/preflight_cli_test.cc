// Exit 2 means "nothing ran, nothing was cached": bad input that can be found
// without running a step is found before the first step runs, and named by
// the user's own path (not the cache's view of it).
#include <gtest/gtest.h>

#include "tests/e2e_support.h"

namespace mb::e2e {
namespace {

class PreflightTest : public ::testing::Test {
 protected:
  void SetUp() override { copy_tiny_example(dir()); }
  fs::path dir() const { return m_tmp.path(); }

  // Builds fused_8bit (fuse, then the native gate) and expects exit 2 with
  // `needle` in the message, and no step run or cached.
  void expect_bad_input(const std::string& needle) {
    CliRun r = modelbuild(dir(), {"fused_8bit"});
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_NE(r.output.find(needle), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find(".modelbuild/views"), std::string::npos) << "names a cache path:\n" << r.output;
    EXPECT_EQ(r.output.find("built in"), std::string::npos) << "a step ran:\n" << r.output;
    EXPECT_EQ(cached_entries(), 0u) << r.output;
    EXPECT_FALSE(fs::exists(dir() / "build" / "fused_8bit"));
  }
  size_t cached_entries() const {
    size_t n = 0;
    const fs::path ac = dir() / ".modelbuild" / "ac";
    if (!fs::exists(ac)) return 0;
    for (auto it = fs::recursive_directory_iterator(ac); it != fs::recursive_directory_iterator(); ++it)
      n += it->is_regular_file();
    return n;
  }
  // Replaces a file of the base that the example links read-only.
  void rewrite_base_file(const std::string& name, const std::string& text) {
    const fs::path p = dir() / "models" / "base-4bit" / name;
    fs::remove(p);
    write_file(p, text);
  }

  TempDir m_tmp{"preflight-test"};
};

TEST_F(PreflightTest, AnArchitectureTheEngineCannotRunStopsTheBuildBeforeTheFuse) {
  std::string config = read_file(dir() / "models/base-4bit/config.json");
  const size_t at = config.find("Qwen2ForCausalLM");
  ASSERT_NE(at, std::string::npos);
  config.replace(at, 16, "MambaForCausalLM");
  rewrite_base_file("config.json", config);
  expect_bad_input("models/base-4bit/config.json");
  CliRun r = modelbuild(dir(), {"fused_8bit"});
  EXPECT_NE(r.output.find("MambaForCausalLM"), std::string::npos) << r.output;
}

TEST_F(PreflightTest, AGarbledTokenizerIsBadInputNamingTheBasesFile) {
  rewrite_base_file("tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": ");
  expect_bad_input("models/base-4bit/tokenizer.json");
}

TEST_F(PreflightTest, AMissingTokenizerIsBadInput) {
  fs::remove(dir() / "models" / "base-4bit" / "tokenizer.json");
  expect_bad_input("models/base-4bit/tokenizer.json");
}

TEST_F(PreflightTest, ACorruptLockFileStopsTheBuildBeforeItStarts) {
  write_file(dir() / "modelbuild.lock", "{\"format\": 1, \"targets\": [}");
  expect_bad_input("modelbuild.lock");
}

TEST_F(PreflightTest, AnUnknownPlaceholderIsFoundWhenTheRecipeIsRead) {
  write_file(dir() / "modelbuild.yaml", read_file(dir() / "modelbuild.yaml") + R"(
  convert:
    command: "cp -r {fused_8bit} {out}/m && echo {fused8}"
    inputs: [fused_8bit]
    outputs: [m]
)");
  CliRun r = modelbuild(dir(), {"convert"});
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("modelbuild.yaml:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("unknown placeholder {fused8}"), std::string::npos) << r.output;
  EXPECT_EQ(cached_entries(), 0u);
}

// Preflight costs nothing when nothing runs: a fully cached build does not
// read the base's tokenizer at all, so breaking it afterwards... changes the
// base's digest, and the next build checks it again before running.
TEST_F(PreflightTest, ACachedBuildStillSucceedsAndABrokenInputIsCaughtOnTheNextMiss) {
  CliRun first = modelbuild(dir(), {"fused_8bit"});
  ASSERT_EQ(first.code, 0) << first.output;
  CliRun again = modelbuild(dir(), {"fused_8bit"});
  ASSERT_EQ(again.code, 0) << again.output;
  rewrite_base_file("tokenizer.json", "not json");
  CliRun broken = modelbuild(dir(), {"fused_8bit"});
  EXPECT_EQ(broken.code, 2) << broken.output;
  EXPECT_NE(broken.output.find("models/base-4bit/tokenizer.json"), std::string::npos) << broken.output;
}

}  // namespace
}  // namespace mb::e2e
