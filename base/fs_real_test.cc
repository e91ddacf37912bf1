// RealFileSystem and the fs_util helpers, on a temporary directory.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

#include "base/fs.h"

namespace mb {
namespace {

class RealFs : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "mb-fs-real-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    m_dir = tmpl;
    m_fs = make_real_file_system();
  }
  void TearDown() override { (void)m_fs->remove_all(m_dir); }

  fs::path m_dir;
  std::unique_ptr<FileSystem> m_fs;
};

TEST_F(RealFs, AtomicWriteThenReadMapAndStat) {
  fs::path f = m_dir / "a.txt";
  ASSERT_TRUE(write_file_atomic(*m_fs, f, std::string_view("hello")).ok());
  ASSERT_TRUE(write_file_atomic(*m_fs, f, std::string_view("hello, again")).ok());
  EXPECT_EQ(*m_fs->read_file(f), "hello, again");
  auto map = m_fs->map_file(f);
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(as_chars((*map)->bytes()), "hello, again");
  auto st = m_fs->stat(f);
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(st->is_regular);
  EXPECT_EQ(st->size, 12u);
  // No temp file is left beside the target.
  EXPECT_EQ(*m_fs->list_dir(m_dir), (std::vector<std::string>{"a.txt"}));
}

// Resident pages of this process (/proc/self/statm, second field).
long resident_pages() {
  long size = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  if (std::fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
  std::fclose(f);
  return resident;
}

TEST_F(RealFs, DoneWithDropsStreamedPagesFromTheResidentSetButKeepsThemReadable) {
  const size_t bytes = size_t{32} << 20;
  fs::path f = m_dir / "big.bin";
  std::string data(bytes, '\0');
  for (size_t i = 0; i < bytes; i += 4096) data[i] = static_cast<char>(i / 4096);
  ASSERT_TRUE(write_file_atomic(*m_fs, f, std::string_view(data)).ok());
  auto map = m_fs->map_file(f);
  ASSERT_TRUE(map.ok());
  auto span = (*map)->bytes();
  long before = resident_pages();
  unsigned sum = 0;
  for (size_t i = 0; i < bytes; i += 4096) sum += static_cast<unsigned char>(span[i]);
  long touched = resident_pages();
  (*map)->done_with(0, bytes);
  long after = resident_pages();
  const long pages = static_cast<long>(bytes / 4096);
  EXPECT_GE(touched - before, pages * 9 / 10) << "reading should have paged the file in";
  EXPECT_LE(after, touched - pages * 9 / 10) << "done_with should have dropped the pages";
  unsigned again = 0;
  for (size_t i = 0; i < bytes; i += 4096) again += static_cast<unsigned char>(span[i]);
  EXPECT_EQ(again, sum);
}

TEST_F(RealFs, EmptyFileMapsToNoBytes) {
  fs::path f = m_dir / "empty";
  ASSERT_TRUE(write_file_atomic(*m_fs, f, std::string_view("")).ok());
  auto map = m_fs->map_file(f);
  ASSERT_TRUE(map.ok());
  EXPECT_TRUE((*map)->bytes().empty());
}

TEST_F(RealFs, MissingPathsAreNotFoundAndRemovingThemIsFine) {
  EXPECT_EQ(m_fs->stat(m_dir / "nope").error().code, Errc::kNotFound);
  EXPECT_EQ(m_fs->read_file(m_dir / "nope").error().code, Errc::kNotFound);
  EXPECT_TRUE(m_fs->remove(m_dir / "nope").ok());
  EXPECT_TRUE(m_fs->remove_all(m_dir / "nope").ok());
}

TEST_F(RealFs, ListDirIsSortedBytewise) {
  for (const char* name : {"b", "B", "a", "_"}) {
    ASSERT_TRUE(write_file_atomic(*m_fs, m_dir / name, std::string_view("x")).ok());
  }
  EXPECT_EQ(*m_fs->list_dir(m_dir), (std::vector<std::string>{"B", "_", "a", "b"}));
}

TEST_F(RealFs, HardLinkSharesTheInode) {
  fs::path a = m_dir / "a", b = m_dir / "b";
  ASSERT_TRUE(write_file_atomic(*m_fs, a, std::string_view("x")).ok());
  ASSERT_TRUE(m_fs->hard_link(a, b).ok());
  EXPECT_EQ(m_fs->stat(a)->ino, m_fs->stat(b)->ino);
  EXPECT_EQ(m_fs->stat(a)->nlink, 2u);
}

TEST_F(RealFs, LinkOrCopyLinksWithinOneFilesystem) {
  fs::path a = m_dir / "a", b = m_dir / "b";
  ASSERT_TRUE(write_file_atomic(*m_fs, a, std::string_view("payload")).ok());
  auto kind = link_or_copy(*m_fs, a, b);
  ASSERT_TRUE(kind.ok());
  EXPECT_NE(*kind, LinkKind::kCopy);
  EXPECT_EQ(*m_fs->read_file(b), "payload");
  EXPECT_FALSE(link_or_copy(*m_fs, a, m_dir / "missing-dir" / "c").ok());
}

TEST_F(RealFs, CopyFileCopiesBytes) {
  fs::path a = m_dir / "a", b = m_dir / "b";
  std::string big(300000, 'q');
  ASSERT_TRUE(write_file_atomic(*m_fs, a, std::string_view(big)).ok());
  ASSERT_TRUE(m_fs->copy_file(a, b).ok());
  EXPECT_EQ(*m_fs->read_file(b), big);
  EXPECT_NE(m_fs->stat(a)->ino, m_fs->stat(b)->ino);
}

TEST_F(RealFs, SetModeAndTouch) {
  fs::path a = m_dir / "a";
  ASSERT_TRUE(write_file_atomic(*m_fs, a, std::string_view("x")).ok());
  ASSERT_TRUE(m_fs->set_mode(a, 0444).ok());
  EXPECT_EQ(m_fs->stat(a)->mode, 0444u);
  struct timespec past[2] = {{1000, 0}, {1000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, a.c_str(), past, 0), 0);
  ASSERT_TRUE(m_fs->touch(a).ok());
  EXPECT_GT(m_fs->stat(a)->mtime_ns, int64_t{1000} * 1000000000);
}

TEST_F(RealFs, RemoveAllRemovesReadOnlyTrees) {
  fs::path d = m_dir / "ro";
  ASSERT_TRUE(m_fs->create_dirs(d / "sub").ok());
  ASSERT_TRUE(write_file_atomic(*m_fs, d / "sub" / "f", std::string_view("x")).ok());
  ASSERT_TRUE(m_fs->set_mode(d / "sub" / "f", 0444).ok());
  ASSERT_TRUE(m_fs->set_mode(d / "sub", 0555).ok());
  ASSERT_TRUE(m_fs->remove_all(d).ok());
  EXPECT_EQ(m_fs->stat(d).error().code, Errc::kNotFound);
}

TEST_F(RealFs, TryLockFailsWhileHeldAndOtherLocksAreIndependent) {
  fs::path l = m_dir / "x.lock";
  auto held = m_fs->lock(l);
  ASSERT_TRUE(held.ok());
  ASSERT_NE(*held, nullptr);
  auto again = m_fs->try_lock(l);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, nullptr);
  auto other = m_fs->try_lock(m_dir / "y.lock");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*other, nullptr);
  held->reset();
  auto after = m_fs->try_lock(l);
  ASSERT_TRUE(after.ok());
  EXPECT_NE(*after, nullptr);
}

TEST_F(RealFs, LockIsReleasedWhenTheHolderDies) {
  fs::path l = m_dir / "x.lock";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto fs = make_real_file_system();
    auto lock = fs->lock(l);
    ::_exit(lock.ok() && *lock != nullptr ? 0 : 1);  // dies holding it
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  auto lock = m_fs->try_lock(l);
  ASSERT_TRUE(lock.ok());
  EXPECT_NE(*lock, nullptr);
}

TEST(TempPath, IsAUniqueSiblingNamedAfterThePathAndPid) {
  fs::path a = temp_path_for("/x/y/name");
  fs::path b = temp_path_for("/x/y/name");
  EXPECT_EQ(a.parent_path(), fs::path("/x/y"));
  EXPECT_EQ(a.filename().string().rfind("name.tmp." + std::to_string(::getpid()) + ".", 0), 0u);
  EXPECT_NE(a, b);
}

TEST(LinkKindName, NamesEachKind) {
  EXPECT_STREQ(link_kind_name(LinkKind::kReflink), "reflink");
  EXPECT_STREQ(link_kind_name(LinkKind::kHardlink), "hardlink");
  EXPECT_STREQ(link_kind_name(LinkKind::kCopy), "copy");
}

}  // namespace
}  // namespace mb
