// A CI machine may mount a warmed cache read-only: hits must still be served
// (no write lock needed), a miss must say what to do, and a failure that is
// not about the artifact must never delete a build/TARGET that still matches
// the recipe. The cache is made read-only for real, with a read-only bind
// mount in a private mount namespace (`unshare -m`, which needs root, as the
// test machines run).
#include <gtest/gtest.h>

#include "tests/e2e_support.h"

namespace mb::e2e {
namespace {

class ReadOnlyCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    copy_tiny_example(dir());
    CliRun warm = modelbuild(dir(), {"fused_8bit"});
    ASSERT_EQ(warm.code, 0) << warm.output;
  }
  fs::path dir() const { return m_tmp.path(); }
  fs::path cache() const { return dir() / ".modelbuild"; }

  // `modelbuild ARGS` with the cache mounted read-only for that process only.
  CliRun read_only_build(const std::vector<std::string>& args) {
    std::string cmd = "mount --bind '" + cache().string() + "' '" + cache().string() +
                      "' && mount -o remount,bind,ro '" + cache().string() + "' && exec '" + binary().string() + "'";
    for (const auto& a : args) cmd += " '" + a + "'";
    SubprocessOptions opts;
    opts.cwd = dir();
    opts.timeout = std::chrono::seconds(300);
    opts.env["MODELBUILD_CACHE"] = "";
    auto r = run_subprocess({"unshare", "-m", "/bin/sh", "-c", cmd}, opts);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
    if (!r.ok()) return {};
    return {r->exit_code, r->output, r->stdout_text};
  }

  TempDir m_tmp{"readonly-cache-test"};
};

TEST_F(ReadOnlyCacheTest, TheMountReallyIsReadOnly) {
  CliRun r = read_only_build({"--version"});
  ASSERT_EQ(r.code, 0) << "unshare -m and a read-only bind mount are needed (run as root): " << r.output;
  SubprocessOptions opts;
  const std::string probe = "mount --bind '" + cache().string() + "' '" + cache().string() +
                            "' && mount -o remount,bind,ro '" + cache().string() + "' && touch '" +
                            (cache() / "probe").string() + "'";
  auto touch = run_subprocess({"unshare", "-m", "/bin/sh", "-c", probe}, opts);
  ASSERT_TRUE(touch.ok());
  EXPECT_NE(touch->exit_code, 0) << touch->output;
  EXPECT_NE(touch->output.find("Read-only"), std::string::npos) << touch->output;
}

TEST_F(ReadOnlyCacheTest, HitsAreServedAndRematerialized) {
  const std::string before = read_file(dir() / "build/fused_8bit/model.safetensors");
  CliRun again = read_only_build({"fused_8bit"});
  EXPECT_EQ(again.code, 0) << again.output;
  EXPECT_NE(again.output.find("up to date"), std::string::npos) << again.output;
  // build/ is gone: it is linked (here copied: link(2) does not cross mounts) again from the read-only cache.
  fs::remove_all(dir() / "build");
  CliRun fresh = read_only_build({"fused_8bit"});
  EXPECT_EQ(fresh.code, 0) << fresh.output;
  EXPECT_EQ(read_file(dir() / "build/fused_8bit/model.safetensors"), before);
}

TEST_F(ReadOnlyCacheTest, AMissSaysWhatToDoAndKeepsTheArtifactsThatStillMatch) {
  CliRun miss = read_only_build({"fused_8bit", "fused_6bit"});
  EXPECT_NE(miss.code, 0) << miss.output;
  EXPECT_NE(miss.output.find("is read-only"), std::string::npos) << miss.output;
  EXPECT_NE(miss.output.find("MODELBUILD_CACHE"), std::string::npos) << miss.output;
  // The failure is the cache's, not fused_8bit's: its artifact stays.
  EXPECT_TRUE(fs::exists(dir() / "build/fused_8bit/model.safetensors")) << miss.output;
  EXPECT_EQ(miss.output.find("removed"), std::string::npos) << miss.output;
}

}  // namespace
}  // namespace mb::e2e
