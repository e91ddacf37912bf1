// Cache facade: layout and VERSION, commit, crash safety, verify.
#include "cache/cache.h"

#include <gtest/gtest.h>

#include "base/fs_test_support.h"
#include "cache/test_util.h"

namespace mb {
namespace {

using testing::build_step;
using testing::count_warnings;
using testing::key_of;
using testing::write_text;

const std::vector<std::pair<std::string, std::string>> kOutputs = {
    {"model.safetensors", std::string(5000, 'm')}, {"config.json", "{\"a\": 1}"}, {"tok/tokenizer.json", "tok"}};

TEST(CacheInit, CreatesTheLayoutAndVersion) {
  MemoryFileSystem fs;
  NullReporter reporter;
  Cache cache(fs, "/c", reporter);
  ASSERT_TRUE(cache.init().ok());
  for (const char* sub : {"cas", "ac", "tmp", "locks", "state"}) EXPECT_TRUE(fs.stat(fs::path("/c") / sub)->is_dir);
  EXPECT_EQ(*fs.contents("/c/VERSION"), "1\n");
  ASSERT_TRUE(cache.init().ok());  // idempotent
}

TEST(CacheInit, ANewerVersionIsAnErrorNamingTheFile) {
  MemoryFileSystem fs;
  NullReporter reporter;
  fs.add_file("/c/VERSION", "2\n");
  Cache cache(fs, "/c", reporter);
  Status st = cache.init();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kUnsupported);
  EXPECT_EQ(st.error().where, "/c/VERSION");
  EXPECT_NE(st.error().message.find("newer"), std::string::npos);
  EXPECT_EQ(fs.stat("/c/cas").error().code, Errc::kNotFound) << "nothing created in a cache we do not understand";
}

TEST(CacheInit, AGarbageVersionIsCorrupt) {
  MemoryFileSystem fs;
  NullReporter reporter;
  fs.add_file("/c/VERSION", "one");
  Cache cache(fs, "/c", reporter);
  Status st = cache.init();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kCorrupt);
  EXPECT_EQ(st.error().where, "/c/VERSION");
}

class CacheTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(m_cache.init().ok()); }
  MemoryFileSystem m_fs;
  RecordingReporter m_reporter;
  Cache m_cache{m_fs, "/c", m_reporter};
};

TEST_F(CacheTest, CommitStoresOutputsAndRemovesStaging) {
  auto staging = m_cache.begin(key_of("k"));
  ASSERT_TRUE(staging.ok());
  EXPECT_EQ(staging->dir().parent_path(), fs::path("/c/tmp"));
  EXPECT_TRUE(m_fs.list_dir(staging->dir())->empty());
  for (const auto& [rel, content] : kOutputs) {
    ASSERT_TRUE(m_fs.create_dirs((staging->dir() / rel).parent_path()).ok());
    ASSERT_TRUE(write_text(m_fs, staging->dir() / rel, content).ok());
  }
  ASSERT_TRUE(m_fs.create_dirs(staging->dir() / "empty_dir").ok());
  ASSERT_TRUE(m_fs.set_mode(staging->dir() / "config.json", 0755).ok());
  auto entry = m_cache.commit(*staging, "fuse", {{"loss", 0.5}});
  ASSERT_TRUE(entry.ok()) << entry.error().to_string();
  EXPECT_FALSE(staging->active());
  EXPECT_EQ(m_fs.stat(staging->dir()).error().code, Errc::kNotFound);
  ASSERT_EQ(entry->outputs.size(), 3u);
  EXPECT_TRUE(entry->outputs[0].executable);  // config.json
  EXPECT_FALSE(entry->outputs[1].executable);
  for (const OutputFile& o : entry->outputs) EXPECT_TRUE(m_cache.cas().contains(o.digest));
  auto hit = m_cache.lookup(key_of("k"));
  ASSERT_TRUE(hit.ok() && hit->has_value());
  EXPECT_EQ((*hit)->output_digest, entry->output_digest);
  EXPECT_EQ((*hit)->report["loss"], 0.5);
}

TEST_F(CacheTest, OutputDigestEqualsTheDigestOfTheSameTreeOnDisk) {
  // Early cutoff: a source directory with the same bytes has the same digest.
  auto entry = build_step(m_cache, key_of("k"), kOutputs);
  ASSERT_TRUE(entry.ok());
  for (const auto& [rel, content] : kOutputs) m_fs.add_file(fs::path("/src") / rel, content);
  FileDigestCache digests(m_fs, "/state", m_reporter);
  EXPECT_EQ(*digests.digest_of_tree("/src", 2), entry->output_digest);
}

TEST_F(CacheTest, AnUncommittedStagingLeavesNoEntry) {
  fs::path dir;
  {
    auto staging = m_cache.begin(key_of("k"));
    ASSERT_TRUE(staging.ok());
    dir = staging->dir();
    ASSERT_TRUE(write_text(m_fs, dir / "model.bin", "half").ok());
  }  // step failed: never committed
  EXPECT_EQ(m_fs.stat(dir).error().code, Errc::kNotFound);
  EXPECT_FALSE(m_cache.lookup(key_of("k"))->has_value());
  EXPECT_TRUE(m_cache.actions().list()->empty());
  EXPECT_TRUE(m_cache.cas().list()->empty());

  auto staging = m_cache.begin(key_of("k"));
  ASSERT_TRUE(write_text(m_fs, staging->dir() / "model.bin", "half").ok());
  ASSERT_TRUE(m_cache.abandon(*staging).ok());
  EXPECT_FALSE(m_fs.stat(staging->dir()).ok());
  EXPECT_FALSE(m_cache.commit(*staging, "test", {}).ok());
}

TEST_F(CacheTest, SymlinkOutputsAreRejected) {
  auto staging = m_cache.begin(key_of("k"));
  ASSERT_TRUE(staging.ok());
  m_fs.add_file("/elsewhere", "x");
  m_fs.add_symlink(staging->dir() / "link", "/elsewhere");
  auto entry = m_cache.commit(*staging, "test", {});
  ASSERT_FALSE(entry.ok());
  EXPECT_EQ(entry.error().code, Errc::kInvalidInput);
  EXPECT_FALSE(m_cache.lookup(key_of("k"))->has_value());
}

TEST_F(CacheTest, DuplicateOutputsShareOneBlob) {
  auto entry = build_step(m_cache, key_of("k"), {{"a", "same"}, {"b/a", "same"}});
  ASSERT_TRUE(entry.ok());
  EXPECT_EQ(m_cache.cas().list()->size(), 1u);
  EXPECT_TRUE(m_cache.lookup(key_of("k"))->has_value());
  EXPECT_EQ(count_warnings(m_reporter), 0u);
}

// Whatever operation fails during a commit, and whether or not the machine
// then loses power, the entry is either absent or complete and correct.
TEST(CacheCrash, AFaultAtEveryOperationOfACommitLeavesNoPartialEntry) {
  bool committed_at_last = false;
  for (int n = 1; n < 200 && !committed_at_last; ++n) {
    for (bool crash : {false, true}) {
      MemoryFileSystem memory;
      FaultyFileSystem fs(memory);
      RecordingReporter reporter;
      Cache cache(fs, "/c", reporter);
      ASSERT_TRUE(cache.init().ok());
      auto staging = cache.begin(key_of("k"));
      ASSERT_TRUE(staging.ok());
      for (const auto& [rel, content] : kOutputs) {
        ASSERT_TRUE(fs.create_dirs((staging->dir() / rel).parent_path()).ok());
        ASSERT_TRUE(write_text(fs, staging->dir() / rel, content).ok());  // the step syncs its outputs
      }
      fs.fail_op_after(n);
      auto entry = cache.commit(*staging, "test", {});
      fs.clear_faults();
      if (crash) {
        staging->release();  // the process died: nothing cleans up
        ASSERT_TRUE(fs.crash().ok());
      }
      Cache after(fs, "/c", reporter);
      ASSERT_TRUE(after.init().ok());
      auto hit = after.lookup(key_of("k"));
      ASSERT_TRUE(hit.ok());
      if (entry.ok()) {
        committed_at_last = true;
        ASSERT_TRUE(hit->has_value()) << "committed but not found, fault " << n << " crash " << crash;
      }
      if (hit->has_value()) {
        ASSERT_EQ((*hit)->outputs.size(), kOutputs.size());
        for (const auto& [rel, content] : kOutputs) {
          auto it = std::find_if((*hit)->outputs.begin(), (*hit)->outputs.end(), [&rel = rel](const OutputFile& o) {
            return o.path == rel;
          });  // clang 14 cannot capture a binding
          ASSERT_NE(it, (*hit)->outputs.end());
          EXPECT_EQ(*memory.contents(after.cas().blob_path(it->digest)), content) << n;
        }
      }
      // Whatever was left behind, gc cleans it up eventually.
      auto gc = after.gc(0, {}, GcOptions{0, 0});
      ASSERT_TRUE(gc.ok());
      EXPECT_TRUE(after.actions().list()->empty());
      EXPECT_TRUE(after.cas().list()->empty()) << n;
    }
  }
  EXPECT_TRUE(committed_at_last) << "the loop never reached a fault-free commit";
}

TEST(CacheCrash, FaultOnEveryDataWriteOfACommit) {
  for (int n = 1; n <= 5; ++n) {
    MemoryFileSystem memory;
    FaultyFileSystem fs(memory);
    NullReporter reporter;
    Cache cache(fs, "/c", reporter);
    ASSERT_TRUE(cache.init().ok());
    auto staging = cache.begin(key_of("k"));
    ASSERT_TRUE(write_text(fs, staging->dir() / "f", "bytes").ok());
    fs.fail_write_after(n);
    auto entry = cache.commit(*staging, "test", {});
    fs.clear_faults();
    auto hit = cache.lookup(key_of("k"));
    ASSERT_TRUE(hit.ok());
    EXPECT_EQ(entry.ok(), hit->has_value()) << n;
  }
}

TEST(CacheCrash, OutputsTheStepNeverSyncedAreAMissAfterPowerLoss) {
  MemoryFileSystem memory;
  FaultyFileSystem fs(memory);
  RecordingReporter reporter;
  Cache cache(fs, "/c", reporter);
  ASSERT_TRUE(cache.init().ok());
  ASSERT_TRUE(build_step(cache, key_of("k"), kOutputs, /*sync=*/false).ok());
  ASSERT_TRUE(cache.lookup(key_of("k"))->has_value());
  ASSERT_TRUE(fs.crash().ok());
  EXPECT_FALSE(cache.lookup(key_of("k"))->has_value()) << "never a wrong artifact";
  EXPECT_GE(count_warnings(reporter), 1u);
}

TEST(CacheCrash, SyncedOutputsSurvivePowerLoss) {
  MemoryFileSystem memory;
  FaultyFileSystem fs(memory);
  NullReporter reporter;
  Cache cache(fs, "/c", reporter);
  ASSERT_TRUE(cache.init().ok());
  ASSERT_TRUE(build_step(cache, key_of("k"), kOutputs, /*sync=*/true).ok());
  ASSERT_TRUE(fs.crash().ok());
  EXPECT_TRUE(cache.lookup(key_of("k"))->has_value());
}

TEST_F(CacheTest, VerifyAllDeletesCorruptBlobs) {
  auto entry = build_step(m_cache, key_of("k"), kOutputs);
  ASSERT_TRUE(entry.ok());
  ASSERT_EQ(entry->outputs[1].path, "model.safetensors");
  fs::path blob = m_cache.cas().blob_path(entry->outputs[1].digest);
  std::string bytes = *m_fs.contents(blob);
  bytes[100] = static_cast<char>(bytes[100] ^ 1);
  ASSERT_TRUE(write_text(m_fs, blob, bytes).ok());
  auto stats = m_cache.verify_all(2);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->blobs_checked, 3u);
  EXPECT_EQ(stats->corrupt_removed, 1u);
  EXPECT_EQ(stats->bytes_checked, 5000u + 8u + 3u);
  EXPECT_FALSE(m_fs.stat(blob).ok());
  EXPECT_EQ(count_warnings(m_reporter, "corrupt"), 1u);
  EXPECT_FALSE(m_cache.lookup(key_of("k"))->has_value());
  auto again = m_cache.verify_all(1);
  EXPECT_EQ(again->corrupt_removed, 0u);
  EXPECT_EQ(again->blobs_checked, 2u);
}

TEST_F(CacheTest, FileDigestStateIsSavedUnderTheRoot) {
  m_fs.add_file("/src/x", "x");
  ASSERT_TRUE(m_fs.set_mtime("/src/x", 1000).ok());
  ASSERT_TRUE(m_cache.file_digests().digest_of("/src/x").ok());
  ASSERT_TRUE(m_cache.save_state().ok());
  EXPECT_TRUE(m_fs.stat("/c/state/file-digests").ok());
}

}  // namespace
}  // namespace mb
