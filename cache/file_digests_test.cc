#include "cache/file_digests.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "base/fs_test_support.h"
#include "cache/test_util.h"

namespace mb {
namespace {

using testing::count_warnings;
using testing::write_text;

constexpr int64_t kHourNs = int64_t{3600} * 1000000000;

// A memory tree whose files are an hour old, so none is racily clean.
class FileDigestsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    add("/src/model/config.json", "{}");
    add("/src/model/weights.bin", std::string(10000, 'w'));
    add("/src/model/sub/tokenizer.json", "tok");
  }
  void add(const fs::path& path, std::string_view content) {
    m_fs.add_file(path, content);
    ASSERT_TRUE(m_fs.set_mtime(path, m_fs.now_ns() - kHourNs).ok());
  }
  std::vector<fs::path> sorted(std::vector<fs::path> v) {
    std::sort(v.begin(), v.end());
    return v;
  }

  MemoryFileSystem m_fs;
  RecordingReporter m_reporter;
};

TEST_F(FileDigestsTest, UnchangedFilesAreReusedWithoutReading) {
  FileDigestCache cache(m_fs, "/state/file-digests", m_reporter);
  auto first = cache.digest_of("/src/model/config.json");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, digest_string("{}"));
  m_fs.clear_accesses();
  auto second = cache.digest_of("/src/model/config.json");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, *first);
  EXPECT_TRUE(m_fs.read_paths().empty());
  EXPECT_EQ(cache.stats().files_hashed, 1u);
  EXPECT_EQ(cache.stats().files_reused, 1u);
  EXPECT_EQ(cache.stats().bytes_hashed, 2u);
}

TEST_F(FileDigestsTest, TouchingOneFileRehashesOnlyThatFile) {
  FileDigestCache cache(m_fs, "/state/file-digests", m_reporter);
  auto before = cache.digest_of_tree("/src/model", 2);
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(cache.hashed_paths().size(), 3u);
  ASSERT_TRUE(m_fs.touch("/src/model/weights.bin").ok());
  m_fs.clear_accesses();
  auto after = cache.digest_of_tree("/src/model", 2);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, *before);  // same bytes, same digest
  EXPECT_EQ(m_fs.read_paths(), std::vector<fs::path>{"/src/model/weights.bin"});
  EXPECT_EQ(cache.stats().files_hashed, 4u);
  EXPECT_EQ(cache.stats().files_reused, 2u);
}

TEST_F(FileDigestsTest, SameSizeContentChangeIsSeen) {
  FileDigestCache cache(m_fs, "/state/file-digests", m_reporter);
  Digest before = *cache.digest_of_tree("/src/model", 1);
  ASSERT_TRUE(write_text(m_fs, "/src/model/config.json", "[]").ok());
  Digest after = *cache.digest_of_tree("/src/model", 1);
  EXPECT_NE(after, before);
  EXPECT_EQ(*cache.digest_of("/src/model/config.json"), digest_string("[]"));
}

TEST_F(FileDigestsTest, RacilyCleanEntriesAreRehashedByTheNextProcess) {
  m_fs.add_file("/src/fresh", "just written");  // mtime: now
  {
    FileDigestCache cache(m_fs, "/state/file-digests", m_reporter);
    ASSERT_TRUE(cache.digest_of("/src/fresh").ok());
    ASSERT_TRUE(cache.digest_of("/src/fresh").ok());
    // Within one process the file this process just hashed is not re-read.
    EXPECT_EQ(cache.stats().files_hashed, 1u);
    ASSERT_TRUE(cache.save().ok());
  }
  {
    FileDigestCache cache(m_fs, "/state/file-digests", m_reporter);
    cache.load();
    ASSERT_TRUE(cache.digest_of("/src/fresh").ok());
    EXPECT_EQ(cache.stats().files_hashed, 1u) << "a file written within the margin must not be trusted";
  }
  // Once hashing started well after its last change, the entry is trusted.
  {
    FileDigestCache cache(m_fs, "/state/file-digests", m_reporter);
    cache.set_clock_for_testing([this] { return m_fs.now_ns() + 2 * FileDigestCache::kRacyMarginNs; });
    cache.load();
    ASSERT_TRUE(cache.digest_of("/src/fresh").ok());  // still racy from the first run: re-verified
    EXPECT_EQ(cache.stats().files_hashed, 1u);
    ASSERT_TRUE(cache.save().ok());
  }
  FileDigestCache cache(m_fs, "/state/file-digests", m_reporter);
  cache.load();
  ASSERT_TRUE(cache.digest_of("/src/fresh").ok());
  EXPECT_EQ(cache.stats().files_hashed, 0u);
  EXPECT_EQ(cache.stats().files_reused, 1u);
}

TEST_F(FileDigestsTest, StatePersistsAcrossInstancesAndIsWrittenOnlyWhenDirty) {
  {
    FileDigestCache cache(m_fs, "/state/file-digests", m_reporter);
    cache.load();
    ASSERT_TRUE(cache.digest_of_tree("/src/model", 1).ok());
    ASSERT_TRUE(cache.save().ok());
  }
  m_fs.clear_accesses();
  FileDigestCache cache(m_fs, "/state/file-digests", m_reporter);
  cache.load();
  EXPECT_EQ(cache.size(), 3u);
  ASSERT_TRUE(cache.digest_of_tree("/src/model", 1).ok());
  EXPECT_EQ(m_fs.read_paths(), std::vector<fs::path>{"/state/file-digests"});  // the state file only
  EXPECT_EQ(cache.stats().files_reused, 3u);
  ASSERT_TRUE(cache.save().ok());
  EXPECT_TRUE(m_fs.written_paths().empty()) << "nothing changed, nothing written";
  EXPECT_EQ(count_warnings(m_reporter), 0u);
}

TEST_F(FileDigestsTest, TruncatedStateAtEveryLengthReloadsOrRebuilds) {
  {
    FileDigestCache cache(m_fs, "/state/file-digests", m_reporter);
    ASSERT_TRUE(cache.digest_of_tree("/src/model", 1).ok());
    ASSERT_TRUE(cache.save().ok());
  }
  std::string full = *m_fs.contents("/state/file-digests");
  Digest want = *FileDigestCache(m_fs, "/none", m_reporter).digest_of_tree("/src/model", 1);
  for (size_t len = 0; len <= full.size(); ++len) {
    m_fs.add_file("/state/file-digests", std::string_view(full).substr(0, len));
    RecordingReporter reporter;
    FileDigestCache cache(m_fs, "/state/file-digests", reporter);
    cache.load();
    EXPECT_EQ(cache.size(), len == full.size() ? 3u : 0u) << len;
    EXPECT_EQ(count_warnings(reporter), len == full.size() ? 0u : 1u) << len;
    auto d = cache.digest_of_tree("/src/model", 1);
    ASSERT_TRUE(d.ok()) << len;
    EXPECT_EQ(*d, want) << len;
    // A damaged state file is replaced by a good one.
    ASSERT_TRUE(cache.save().ok());
    FileDigestCache again(m_fs, "/state/file-digests", reporter);
    again.load();
    EXPECT_EQ(again.size(), 3u) << len;
  }
}

TEST_F(FileDigestsTest, AnyFlippedByteInTheStateIsDetected) {
  {
    FileDigestCache cache(m_fs, "/state/file-digests", m_reporter);
    ASSERT_TRUE(cache.digest_of_tree("/src/model", 1).ok());
    ASSERT_TRUE(cache.save().ok());
  }
  std::string full = *m_fs.contents("/state/file-digests");
  for (size_t i = 0; i < full.size(); ++i) {
    std::string bad = full;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    m_fs.add_file("/state/file-digests", bad);
    RecordingReporter reporter;
    FileDigestCache cache(m_fs, "/state/file-digests", reporter);
    cache.load();
    EXPECT_EQ(cache.size(), 0u) << i;
    EXPECT_EQ(count_warnings(reporter), 1u) << i;
  }
}

TEST_F(FileDigestsTest, MissingStateIsSilentlyEmpty) {
  FileDigestCache cache(m_fs, "/state/none", m_reporter);
  cache.load();
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(count_warnings(m_reporter), 0u);
}

TEST_F(FileDigestsTest, TreeDigestIsTheTreeOfItsEntriesAndSkipsTheMarker) {
  FileDigestCache cache(m_fs, "/state/file-digests", m_reporter);
  auto entries = cache.tree_entries("/src/model", 2);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0].path, "config.json");
  EXPECT_EQ((*entries)[1].path, "sub/tokenizer.json");
  EXPECT_EQ((*entries)[2].path, "weights.bin");
  EXPECT_EQ((*entries)[2].size, 10000u);
  EXPECT_EQ((*entries)[2].digest, digest_string(std::string(10000, 'w')));
  Digest d = *cache.digest_of_tree("/src/model", 2);
  EXPECT_EQ(d, tree_digest(*entries));
  add("/src/model/.modelbuild-materialized", "bookkeeping");
  EXPECT_EQ(*cache.digest_of_tree("/src/model", 2), d);
  add("/src/model/extra", "");
  EXPECT_NE(*cache.digest_of_tree("/src/model", 2), d);
}

TEST_F(FileDigestsTest, ThreadCountDoesNotChangeTheDigest) {
  for (int i = 0; i < 40; ++i)
    add(fmt::format("/src/many/f{:02}", i), std::string(i * 100, static_cast<char>('a' + i % 26)));
  FileDigestCache one(m_fs, "/s1", m_reporter), four(m_fs, "/s4", m_reporter);
  EXPECT_EQ(*one.digest_of_tree("/src/many", 1), *four.digest_of_tree("/src/many", 4));
  EXPECT_EQ(four.stats().files_hashed, 40u);
}

TEST_F(FileDigestsTest, SymlinksAreFollowedAndCyclesRejected) {
  add("/hf/blobs/abc123", std::string(10000, 'w'));
  m_fs.add_symlink("/src/linked/weights.bin", "/hf/blobs/abc123");
  m_fs.add_symlink("/src/linked/sub", "/src/model/sub");
  add("/src/linked/config.json", "{}");
  FileDigestCache cache(m_fs, "/state/file-digests", m_reporter);
  EXPECT_EQ(*cache.digest_of_tree("/src/linked", 1), *cache.digest_of_tree("/src/model", 1));
  m_fs.add_symlink("/src/linked/loop", "/src/linked");
  auto looped = cache.digest_of_tree("/src/linked", 1);
  ASSERT_FALSE(looped.ok());
  EXPECT_EQ(looped.error().code, Errc::kInvalidInput);
  m_fs.add_symlink("/src/dangling/x", "/nowhere");
  EXPECT_EQ(cache.digest_of_tree("/src/dangling", 1).error().code, Errc::kNotFound);
}

TEST_F(FileDigestsTest, ASingleFileTreeIsTheFileDigest) {
  FileDigestCache cache(m_fs, "/state/file-digests", m_reporter);
  EXPECT_EQ(*cache.digest_of_tree("/src/model/config.json", 1), digest_string("{}"));
}

TEST_F(FileDigestsTest, ConcurrentCallersAgree) {
  FileDigestCache cache(m_fs, "/state/file-digests", m_reporter);
  std::vector<std::thread> threads;
  std::vector<Digest> got(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] { got[t] = *cache.digest_of_tree("/src/model", 2); });
  }
  for (auto& t : threads) t.join();
  for (const Digest& d : got) EXPECT_EQ(d, got[0]);
}

// The same on a real disk, where "touch" is utimensat and ctime is the kernel's.
TEST_F(FileDigestsTest, HashingReportsBytesProgressAndANoOpReportsNothing) {
  // Two files that together span more than two progress steps.
  const uint64_t big = FileDigestCache::kProgressBytes + 1000;
  add("/big/a.safetensors", std::string(big, 'a'));
  add("/big/b.safetensors", std::string(big, 'b'));
  FileDigestCache cache(m_fs, "/state/file-digests", m_reporter);
  ASSERT_TRUE(cache.digest_of_tree("/big", 2).ok());
  std::vector<Event> progress;
  for (const Event& e : m_reporter.events())
    if (e.kind == EventKind::kProgress) progress.push_back(e);
  ASSERT_GE(progress.size(), 2u);
  uint64_t previous = 0;
  for (const Event& e : progress) {
    EXPECT_EQ(e.step, "hash big");
    EXPECT_EQ(e.fields["unit"], "bytes");
    EXPECT_EQ(e.fields["total"].get<uint64_t>(), 2 * big);
    uint64_t done = e.fields["done"].get<uint64_t>();
    EXPECT_GE(done, previous);  // reported in order, whichever thread read the bytes
    previous = done;
  }
  EXPECT_EQ(progress.back().fields["done"].get<uint64_t>(), 2 * big);

  // Nothing to hash: no progress at all.
  size_t events_before = m_reporter.events().size();
  ASSERT_TRUE(cache.digest_of_tree("/big", 2).ok());
  ASSERT_TRUE(cache.digest_of("/big/a.safetensors").ok());
  EXPECT_EQ(m_reporter.events().size(), events_before);
}

TEST(FileDigestsReal, TouchingOneFileRehashesOnlyThatFile) {
  testing::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  auto fs = make_real_file_system();
  RecordingReporter reporter;
  for (const char* name : {"a", "b", "c"}) {
    fs::path p = dir.path() / "src" / name;
    ASSERT_TRUE(fs->create_dirs(p.parent_path()).ok());
    ASSERT_TRUE(write_file_atomic(*fs, p, std::string_view(name)).ok());
    struct timespec past[2] = {{1000000000, 0}, {1000000000, 0}};  // 2001: not racily clean
    ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), past, 0), 0);
  }
  fs::path state = dir.path() / "state";
  {
    FileDigestCache cache(*fs, state, reporter);
    cache.load();
    ASSERT_TRUE(cache.digest_of_tree(dir.path() / "src", 2).ok());
    EXPECT_EQ(cache.stats().files_hashed, 3u);
    ASSERT_TRUE(cache.save().ok());
  }
  ASSERT_TRUE(fs->touch(dir.path() / "src" / "b").ok());
  FileDigestCache cache(*fs, state, reporter);
  cache.load();
  ASSERT_TRUE(cache.digest_of_tree(dir.path() / "src", 2).ok());
  EXPECT_EQ(cache.hashed_paths(), std::vector<fs::path>{dir.path() / "src" / "b"});
  EXPECT_EQ(cache.stats().files_reused, 2u);
  EXPECT_EQ(count_warnings(reporter), 0u);
}

// cp -a, rsync -a and cache restores keep size and mtime: the inode (a file
// renamed over the old one) and the ctime (bytes rewritten in place, then
// the mtime put back) still tell, and each makes the file be re-hashed.
TEST(FileDigestsReal, SameSizeAndMtimeButNewInodeOrCtimeIsRehashed) {
  testing::TempDir dir;
  auto fs = make_real_file_system();
  RecordingReporter reporter;
  const fs::path p = dir.path() / "w.bin";
  struct timespec past[2] = {{1000000000, 0}, {1000000000, 0}};  // 2001: not racily clean
  auto write_old = [&](const fs::path& path, std::string_view bytes) {
    ASSERT_TRUE(write_file_atomic(*fs, path, bytes).ok());
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), past, 0), 0);
  };
  write_old(p, "aaaa");
  FileDigestCache cache(*fs, dir.path() / "state", reporter);
  auto first = cache.digest_of(p);
  ASSERT_TRUE(first.ok());
  write_old(p, "bbbb");  // a new inode, same size and mtime
  auto second = cache.digest_of(p);
  ASSERT_TRUE(second.ok());
  EXPECT_NE(*first, *second);
  // In place (same inode), mtime restored: only the ctime moved.
  const int fd = ::open(p.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, "cccc", 4, 0), 4);
  ::close(fd);
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), past, 0), 0);
  auto third = cache.digest_of(p);
  ASSERT_TRUE(third.ok());
  EXPECT_NE(*second, *third);
  EXPECT_EQ(*third, digest_bytes(as_bytes("cccc")));
  EXPECT_EQ(cache.stats().files_hashed, 3u);
}

}  // namespace
}  // namespace mb
