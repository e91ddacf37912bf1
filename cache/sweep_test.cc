#include "cache/sweep.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/temp_dir.h"
#include "cache/cache.h"

namespace mb {
namespace {

// A pid that is certainly gone: a child we started and reaped.
long dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  return pid;
}

class SweepTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(m_cache.init().ok()); }
  fs::path staging(long pid, const Digest& key) {
    fs::path d = m_dir.path() / "cache" / "tmp" / fmt::format("{}.{}.0", key.hex(), pid);
    EXPECT_TRUE(m_fs->create_dirs(d).ok());
    EXPECT_TRUE(write_file_atomic(*m_fs, d / "part.bin", std::string_view("x")).ok());
    return d;
  }
  fs::path temp(const fs::path& dir, const std::string& base, long pid) {
    fs::path p = dir / fmt::format("{}.tmp.{}.3", base, pid);
    EXPECT_TRUE(m_fs->create_dirs(p).ok());
    return p;
  }
  bool exists(const fs::path& p) { return m_fs->lstat(p).ok(); }

  TempDir m_dir{"modelbuild-sweep"};
  std::unique_ptr<FileSystem> m_fs = make_real_file_system();
  RecordingReporter m_reporter;
  Cache m_cache{*m_fs, m_dir.path() / "cache", m_reporter};
  fs::path m_build = m_dir.path() / "build";
};

TEST_F(SweepTest, DeadOwnersLeftoversGoLiveOnesAndLockedOnesStay) {
  const long dead = dead_pid(), me = ::getpid();
  const Digest k1 = digest_string("one"), k2 = digest_string("two"), k3 = digest_string("three");
  const fs::path dead_staging = staging(dead, k1), my_staging = staging(me, k2);
  const fs::path locked_staging = staging(dead, k3);
  const fs::path dead_target = temp(m_build, "fused_8bit", dead), my_target = temp(m_build, "fused_8bit", me);
  const fs::path dead_report = temp(m_build, "fused_8bit.report.json", dead);
  const fs::path dead_view = temp(m_dir.path() / "cache" / "views", k1.hex(), dead);
  const fs::path dead_entry_tmp = temp(m_dir.path() / "cache" / "ac" / "ab", k1.hex(), dead);
  // Another builder (one whose pid we cannot see) holds k3's step lock.
  auto lock = m_cache.lock_step(k3);
  ASSERT_TRUE(lock.ok());

  EXPECT_EQ(sweep_temporaries(m_cache, m_build, SweepOwner::kDead), 5u);
  for (const auto& p : {dead_staging, dead_target, dead_report, dead_view, dead_entry_tmp})
    EXPECT_FALSE(exists(p)) << p;
  for (const auto& p : {my_staging, my_target, locked_staging}) EXPECT_TRUE(exists(p)) << p;

  // After an interrupt this process removes its own, without asking locks.
  EXPECT_EQ(sweep_temporaries(m_cache, m_build, SweepOwner::kSelf), 2u);
  EXPECT_FALSE(exists(my_staging));
  EXPECT_FALSE(exists(my_target));
  EXPECT_TRUE(exists(locked_staging));
}

TEST(SweepNames, TempNamesParseOnlyWhenWholeAndPositive) {
  std::string base;
  long pid = 0;
  EXPECT_TRUE(parse_temp_name("t.report.json.tmp.42.7", &base, &pid));
  EXPECT_EQ(base, "t.report.json");
  EXPECT_EQ(pid, 42);
  for (const char* bad : {"t.tmp.42", "t.tmp..7", "t.tmp.x.7", ".tmp.42.7", "t.tmp.0.7", "t.tmp.-3.7", "plain"})
    EXPECT_FALSE(parse_temp_name(bad, &base, &pid)) << bad;
}

}  // namespace
}  // namespace mb
