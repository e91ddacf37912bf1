#include "base/platform.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "base/temp_dir.h"

namespace mb {
namespace {

TEST(Platform, ResidentSetGrowsWithTouchedMemory) {
  const uint64_t before = platform::current_rss_bytes();
  std::vector<char> block(64 << 20, 1);  // 64 MiB, every page written
  const uint64_t during = platform::current_rss_bytes();
  EXPECT_GT(before, 0u);
  EXPECT_GE(during, before + (32u << 20)) << block[block.size() / 2];
  EXPECT_GE(platform::peak_rss_bytes(), during);
}

#ifndef __APPLE__
TEST(Platform, MaxRssIsKibOnLinux) { EXPECT_EQ(platform::maxrss_bytes(2), 2048u); }
#endif

TEST(Platform, ReflinkOfMissingSourceLeavesNoDestination) {
  TempDir dir;
  const auto to = dir.path() / "to";
  EXPECT_EQ(platform::reflink(dir.path() / "missing", to), ENOENT);
  EXPECT_FALSE(std::filesystem::exists(to));
}

TEST(Platform, DurableSyncReportsABadDescriptor) { EXPECT_EQ(platform::durable_sync(-1), EBADF); }

}  // namespace
}  // namespace mb
