// A full disk, for real: the cache lives on a tmpfs too small for the next
// artifact, mounted in a private mount namespace (`unshare -m`, which needs
// root, as the test machines run and as tests/readonly_cache_test.cc does).
// The tmpfs vanishes with the namespace, so each scenario is one shell
// script that runs the builds and the checks inside it and leaves its
// findings in files on the real disk for the test to read.
//
// What must hold (issue 14, "a full disk"): the step that hits ENOSPC fails
// with the errno's message and the file it was writing, exit 1; nothing
// partial is left in the cache (no staging, no entry for the failed step,
// `cache verify` clean); a build/TARGET that still matches the recipe is
// not deleted; and once there is room, the same build finishes, reusing what
// was already cached, with the bytes a build on a roomy disk makes.
#include <gtest/gtest.h>

#include "tests/e2e_support.h"

namespace mb::e2e {
namespace {

class FullDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(project());
    copy_tiny_example(project());
    fs::create_directories(project() / ".modelbuild");
    fs::create_directories(results());
  }
  fs::path project() const { return m_tmp.path() / "project"; }
  fs::path results() const { return m_tmp.path() / "results"; }

  // Runs `script` under `sh -e` in `project()`, with the cache on a fresh
  // tmpfs of `kib` KiB. $MB is the binary, $R the results directory.
  CliRun in_small_cache(int kib, const std::string& script) {
    const std::string cmd = "mount -t tmpfs -o size=" + std::to_string(kib) + "k tmpfs .modelbuild && " + script;
    SubprocessOptions opts;
    opts.cwd = project();
    opts.timeout = std::chrono::seconds(300);
    opts.env["MODELBUILD_CACHE"] = "";
    opts.env["MB"] = binary().string();
    opts.env["R"] = results().string();
    auto r = run_subprocess({"unshare", "-m", "/bin/sh", "-c", cmd}, opts);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
    if (!r.ok()) return {};
    return {r->exit_code, r->output, r->stdout_text};
  }
  std::string result(const std::string& name) const { return read_file(results() / name); }

  TempDir m_tmp{"full-disk-test"};
};

TEST_F(FullDiskTest, AStepThatFillsTheDiskFailsCleanlyAndTheBuildFinishesOnceThereIsRoom) {
  // fused_8bit takes about 1.05 MB of cache, fused_6bit another 0.8 MB: a
  // 1500 KiB cache holds the first and not the second.
  const std::string script = R"(
    $MB fused_8bit > $R/warm.txt 2>&1
    sha256sum build/fused_8bit/model.safetensors > $R/sum8.before
    rc=0; $MB fused_8bit fused_6bit > $R/full.txt 2>&1 || rc=$?; echo $rc > $R/full.rc
    sha256sum build/fused_8bit/model.safetensors > $R/sum8.after
    find .modelbuild/tmp .modelbuild/views build -mindepth 1 -maxdepth 1 -name '*tmp*' > $R/leftovers 2>&1 || true
    find .modelbuild/tmp -mindepth 1 >> $R/leftovers
    ls build > $R/build.ls
    rc=0; $MB cache verify > $R/verify.txt 2>&1 || rc=$?; echo $rc > $R/verify.rc
    mount -o remount,size=64m .modelbuild
    rc=0; $MB fused_8bit fused_6bit > $R/room.txt 2>&1 || rc=$?; echo $rc > $R/room.rc
    cp build/fused_6bit/model.safetensors $R/six.safetensors
  )";
  CliRun run = in_small_cache(1500, script);
  ASSERT_EQ(run.code, 0) << "unshare -m and a tmpfs mount are needed (run as root): " << run.output;
  ASSERT_NE(result("warm.txt").find("gate passed"), std::string::npos) << result("warm.txt");

  const std::string full = result("full.txt");
  EXPECT_EQ(result("full.rc"), "1\n") << full;
  EXPECT_NE(full.find("No space left on device"), std::string::npos) << full;
  EXPECT_NE(full.find("fused_6bit"), std::string::npos) << full;
  // Not about fused_8bit: its artifact stays, byte for byte.
  EXPECT_EQ(result("sum8.after"), result("sum8.before"));
  EXPECT_EQ(result("build.ls"), "fused_8bit\nfused_8bit.report.json\n") << full;  // no fused_6bit
  EXPECT_EQ(result("leftovers"), "") << full;
  EXPECT_EQ(result("verify.rc"), "0\n") << result("verify.txt");
  EXPECT_NE(result("verify.txt").find("0 corrupt"), std::string::npos) << result("verify.txt");

  // With room: fused_6bit builds, fused_8bit is not run again.
  const std::string room = result("room.txt");
  EXPECT_EQ(result("room.rc"), "0\n") << room;
  EXPECT_EQ(room.find("[fuse fused_8bit] started"), std::string::npos) << room;
  EXPECT_NE(room.find("[fuse fused_6bit] started"), std::string::npos) << room;

  // The same bytes as a build on the real disk.
  TempDir roomy{"full-disk-reference"};
  copy_tiny_example(roomy.path());
  CliRun reference = modelbuild(roomy.path(), {"fused_6bit"});
  ASSERT_EQ(reference.code, 0) << reference.output;
  EXPECT_EQ(read_file(results() / "six.safetensors"), read_file(roomy.path() / "build/fused_6bit/model.safetensors"));
}

}  // namespace
}  // namespace mb::e2e
