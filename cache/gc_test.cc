#include <gtest/gtest.h>
#include <unistd.h>

#include "base/fs_test_support.h"
#include "cache/cache.h"
#include "cache/test_util.h"

namespace mb {
namespace {

using testing::build_step;
using testing::key_of;
using testing::write_text;

constexpr int64_t kDayNs = int64_t{86400} * 1000000000;

class GcTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(m_cache.init().ok()); }
  // One output of `bytes` bytes, unique to `name`.
  ActionEntry build(const std::string& name, size_t bytes = 1000) {
    std::string content = name + std::string(bytes - name.size(), '.');
    auto e = build_step(m_cache, key_of(name), {{"out.bin", content}});
    EXPECT_TRUE(e.ok());
    return e.ok() ? *e : ActionEntry{};
  }
  void set_age(const std::string& name, int64_t mtime_ns) {
    ASSERT_TRUE(m_fs.set_mtime(m_cache.actions().entry_path(key_of(name)), mtime_ns).ok());
  }
  bool present(const std::string& name) { return m_fs.stat(m_cache.actions().entry_path(key_of(name))).ok(); }

  MemoryFileSystem m_fs;
  RecordingReporter m_reporter;
  Cache m_cache{m_fs, "/c", m_reporter};
};

TEST_F(GcTest, EvictsLeastRecentlyUsedFirstAndKeepsPinned) {
  ActionEntry a = build("a"), b = build("b"), c = build("c");
  set_age("a", 1000);  // oldest, but pinned
  set_age("b", 2000);
  set_age("c", 3000);
  auto stats = m_cache.gc(2000, {key_of("a")});
  ASSERT_TRUE(stats.ok());
  EXPECT_TRUE(present("a"));
  EXPECT_FALSE(present("b"));
  EXPECT_TRUE(present("c"));
  EXPECT_EQ(stats->entries_removed, 1u);
  EXPECT_EQ(stats->entries_kept, 2u);
  EXPECT_EQ(stats->blobs_removed, 1u);
  EXPECT_EQ(stats->bytes_removed, 1000u);
  EXPECT_EQ(stats->bytes_kept, 2000u);
  EXPECT_TRUE(m_cache.cas().contains(a.outputs[0].digest));
  EXPECT_FALSE(m_cache.cas().contains(b.outputs[0].digest));
  EXPECT_TRUE(m_cache.lookup(key_of("a"))->has_value());
  EXPECT_TRUE(m_cache.lookup(key_of("c"))->has_value());
}

TEST_F(GcTest, PinnedEntriesSurviveAZeroBudget) {
  ActionEntry a = build("a");
  build("b");
  auto stats = m_cache.gc(0, {key_of("a")});
  ASSERT_TRUE(stats.ok());
  EXPECT_TRUE(present("a"));
  EXPECT_FALSE(present("b"));
  EXPECT_TRUE(m_cache.cas().contains(a.outputs[0].digest));
  EXPECT_TRUE(m_cache.lookup(key_of("a"))->has_value());
}

TEST_F(GcTest, AHitMakesAnEntryRecentlyUsed) {
  build("a");
  build("b");                                             // newer than a
  ASSERT_TRUE(m_cache.lookup(key_of("a"))->has_value());  // now a is the most recent
  ASSERT_TRUE(m_cache.gc(1000, {}).ok());
  EXPECT_TRUE(present("a"));
  EXPECT_FALSE(present("b"));
}

TEST_F(GcTest, SharedBlobsAreCountedOnceAndKeptWhileReferenced) {
  auto a = build_step(m_cache, key_of("a"), {{"x", std::string(1000, 's')}});
  auto b = build_step(m_cache, key_of("b"), {{"y", std::string(1000, 's')}, {"z", std::string(500, 'z')}});
  ASSERT_TRUE(a.ok() && b.ok());
  set_age("a", 1000);
  set_age("b", 2000);
  auto stats = m_cache.gc(1500, {});
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->entries_removed, 0u) << "1000 + 500 bytes fit: the shared blob counts once";
  stats = m_cache.gc(1200, {key_of("b")});
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->blobs_removed, 0u) << "evicting a frees nothing b still uses";
  EXPECT_EQ(stats->bytes_kept, 1500u);
  EXPECT_FALSE(present("a"));
  EXPECT_TRUE(present("b"));
  EXPECT_TRUE(m_cache.cas().contains(a->outputs[0].digest)) << "still referenced by b";
  EXPECT_TRUE(m_cache.lookup(key_of("b"))->has_value());
}

TEST_F(GcTest, UnreferencedBlobsAndCorruptEntriesAreRemoved) {
  build("a");
  ASSERT_TRUE(write_text(m_fs, "/c/tmp/orphan", "orphan").ok());
  ASSERT_TRUE(m_cache.cas().ingest("/c/tmp/orphan").ok());
  m_fs.add_file(m_cache.actions().entry_path(key_of("junk")), "{broken");
  auto stats = m_cache.gc(1 << 20, {});
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->corrupt_entries_removed, 1u);
  EXPECT_EQ(stats->blobs_removed, 1u);
  EXPECT_FALSE(m_cache.cas().contains(digest_string("orphan")));
  EXPECT_TRUE(m_cache.lookup(key_of("a"))->has_value());
}

TEST_F(GcTest, RemovesStaleTempFilesOnly) {
  std::string hex = key_of("k").hex();
  fs::path dead = fs::path("/c/tmp") / (hex + ".999999999.0");  // owner pid cannot exist
  fs::path live = fs::path("/c/tmp") / fmt::format("{}.{}.9000", hex, ::getpid());
  fs::path old_live = fs::path("/c/tmp") / fmt::format("{}.{}.9001", key_of("old").hex(), ::getpid());
  fs::path old_locked = fs::path("/c/tmp") / fmt::format("{}.{}.9002", key_of("busy").hex(), ::getpid());
  for (const fs::path& p : {dead, live, old_live, old_locked}) m_fs.add_file(p / "partial", "x");
  ASSERT_TRUE(m_fs.set_mtime(old_live, m_fs.now_ns() - 2 * kDayNs).ok());
  ASSERT_TRUE(m_fs.set_mtime(old_locked, m_fs.now_ns() - 2 * kDayNs).ok());
  fs::path ac_temp = m_cache.actions().entry_path(key_of("k")).string() + ".tmp.999999999.3";
  m_fs.add_file(ac_temp, "{");
  auto busy = m_cache.lock_step(key_of("busy"));  // a build still running for a day
  ASSERT_TRUE(busy.ok());
  auto stats = m_cache.gc(1 << 20, {});
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->tmp_removed, 3u);
  EXPECT_FALSE(m_fs.stat(dead).ok());
  EXPECT_TRUE(m_fs.stat(live).ok());
  EXPECT_FALSE(m_fs.stat(old_live).ok());
  EXPECT_TRUE(m_fs.stat(old_locked).ok());
  EXPECT_FALSE(m_fs.stat(ac_temp).ok());
}

TEST_F(GcTest, BlobsOfALiveBuildAreSparedDuringTheGracePeriod) {
  // A build in flight (live staging dir) may have stored blobs whose entry
  // it has not written yet.
  m_fs.add_file(fs::path("/c/tmp") / fmt::format("{}.{}.1", key_of("k").hex(), ::getpid()) / "f", "x");
  ASSERT_TRUE(write_text(m_fs, "/c/tmp/fresh", "fresh").ok());
  ASSERT_TRUE(m_cache.cas().ingest("/c/tmp/fresh").ok());
  ASSERT_TRUE(m_cache.gc(0, {}).ok());
  EXPECT_TRUE(m_cache.cas().contains(digest_string("fresh")));
  ASSERT_TRUE(m_cache.gc(0, {}, GcOptions{0, 86400}).ok());
  EXPECT_FALSE(m_cache.cas().contains(digest_string("fresh")));
}

TEST_F(GcTest, EntriesOfANewerFormatAreKeptWithTheirBlobs) {
  ActionEntry a = build("a");
  nlohmann::json j = entry_to_json(a);
  j["version"] = ActionCache::kEntryVersion + 1;
  m_fs.add_file(m_cache.actions().entry_path(key_of("a")), j.dump());
  ASSERT_TRUE(m_cache.gc(0, {}).ok());
  EXPECT_TRUE(present("a"));
  EXPECT_TRUE(m_cache.cas().contains(a.outputs[0].digest));
}

TEST_F(GcTest, ViewsOfEvictedOutputsAreRemoved) {
  ActionEntry a = build("a"), b = build("b");
  set_age("a", 1000);
  set_age("b", 2000);
  ASSERT_TRUE(m_cache.materialize(a, m_cache.view_dir(a.output_digest)).ok());
  ASSERT_TRUE(m_cache.materialize(b, m_cache.view_dir(b.output_digest)).ok());
  m_fs.add_file("/c/views/" + a.output_digest.hex() + ".tmp.999999999.0/x", "half-made view");
  auto stats = m_cache.gc(1000, {});
  ASSERT_TRUE(stats.ok());
  EXPECT_FALSE(present("a"));
  EXPECT_EQ(stats->views_removed, 2u);
  EXPECT_FALSE(m_fs.stat(m_cache.view_dir(a.output_digest)).ok()) << "its links would keep a's blob on disk";
  EXPECT_TRUE(m_cache.materialize(b, m_cache.view_dir(b.output_digest))->noop);
  EXPECT_EQ(m_fs.list_dir("/c/views")->size(), 1u);
}

TEST(GcReal, EvictsOnDisk) {
  testing::TempDir dir;
  auto fs = make_real_file_system();
  NullReporter reporter;
  Cache cache(*fs, dir.path(), reporter);
  ASSERT_TRUE(cache.init().ok());
  auto a = build_step(cache, key_of("a"), {{"f", "aaaa"}});
  auto b = build_step(cache, key_of("b"), {{"f", "bbbb"}});
  ASSERT_TRUE(a.ok() && b.ok());
  auto stats = cache.gc(4, {key_of("b")});
  ASSERT_TRUE(stats.ok());
  EXPECT_FALSE(cache.lookup(key_of("a"))->has_value());
  EXPECT_TRUE(cache.lookup(key_of("b"))->has_value());
  EXPECT_FALSE(cache.cas().contains(a->outputs[0].digest));
}

}  // namespace
}  // namespace mb
