#include <gtest/gtest.h>

#include <thread>

#include "base/fs_test_support.h"

namespace mb {
namespace {

Status write_text(FileSystem& fs, const fs::path& path, std::string_view text, bool sync) {
  MB_ASSIGN(auto f, fs.open_for_write(path));
  MB_TRY(f->append(as_bytes(text)));
  if (sync) MB_TRY(f->sync());
  return f->close();
}

TEST(MemoryFileSystem, WriteReadStatAndList) {
  MemoryFileSystem fs;
  ASSERT_TRUE(fs.create_dirs("/a/b").ok());
  ASSERT_TRUE(write_text(fs, "/a/b/f", "hello", false).ok());
  ASSERT_TRUE(write_text(fs, "/a/e", "x", false).ok());
  auto text = fs.read_file("/a/b/f");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "hello");
  auto st = fs.stat("/a/b/f");
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(st->is_regular);
  EXPECT_EQ(st->size, 5u);
  EXPECT_EQ(st->nlink, 1u);
  auto names = fs.list_dir("/a");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"b", "e"}));
  EXPECT_EQ(fs.stat("/a/missing").error().code, Errc::kNotFound);
  EXPECT_EQ(fs.stat("/a/b/f/under_a_file").error().code, Errc::kNotFound);
  EXPECT_EQ(fs.open_for_write("/nope/f").error().code, Errc::kNotFound);
}

TEST(MemoryFileSystem, RecordsReadsMapsAndWrites) {
  MemoryFileSystem fs;
  fs.add_file("/d/f", "abc");
  ASSERT_TRUE(fs.read_file("/d/f").ok());
  ASSERT_TRUE(fs.map_file("d/./f").ok());  // relative paths resolve against "/"
  ASSERT_TRUE(write_text(fs, "/d/g", "z", false).ok());
  EXPECT_EQ(fs.read_paths(), (std::vector<fs::path>{"/d/f", "/d/f"}));
  EXPECT_EQ(fs.written_paths(), (std::vector<fs::path>{"/d/g"}));
  fs.clear_accesses();
  EXPECT_TRUE(fs.read_paths().empty());
  ASSERT_TRUE(fs.contents("/d/f").ok());  // contents() is not recorded
  EXPECT_TRUE(fs.read_paths().empty());
}

TEST(MemoryFileSystem, MappingIsStableWhileTheFileChanges) {
  MemoryFileSystem fs;
  fs.add_file("/f", "old");
  auto map = fs.map_file("/f");
  ASSERT_TRUE(map.ok());
  ASSERT_TRUE(write_text(fs, "/f", "new!", false).ok());
  EXPECT_EQ(as_chars((*map)->bytes()), "old");
  EXPECT_EQ(*fs.contents("/f"), "new!");
}

TEST(MemoryFileSystem, HardLinksShareContentAndCountLinks) {
  MemoryFileSystem fs;
  fs.add_file("/a", "one");
  ASSERT_TRUE(fs.hard_link("/a", "/b").ok());
  EXPECT_EQ(fs.stat("/a")->nlink, 2u);
  EXPECT_EQ(fs.stat("/a")->ino, fs.stat("/b")->ino);
  ASSERT_TRUE(write_text(fs, "/b", "two", false).ok());
  EXPECT_EQ(*fs.contents("/a"), "two");
  EXPECT_FALSE(fs.hard_link("/a", "/b").ok());  // destination exists
  ASSERT_TRUE(fs.remove("/b").ok());
  EXPECT_EQ(fs.stat("/a")->nlink, 1u);
  EXPECT_EQ(fs.linked_paths(), (std::vector<fs::path>{"/b", "/b"}));
}

TEST(MemoryFileSystem, ReflinkIsUnsupportedUnlessEnabledAndThenCopyOnWrite) {
  MemoryFileSystem fs;
  fs.add_file("/a", "data");
  auto st = fs.reflink("/a", "/b");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kUnsupported);
  fs.set_reflink_supported(true);
  ASSERT_TRUE(fs.reflink("/a", "/b").ok());
  EXPECT_NE(fs.stat("/a")->ino, fs.stat("/b")->ino);
  ASSERT_TRUE(write_text(fs, "/b", "changed", false).ok());
  EXPECT_EQ(*fs.contents("/a"), "data");
}

TEST(MemoryFileSystem, RenameReplacesAtomicallyAndRefusesNonEmptyDirs) {
  MemoryFileSystem fs;
  fs.add_file("/x/a", "A");
  fs.add_file("/x/b", "B");
  ASSERT_TRUE(fs.rename("/x/a", "/x/b").ok());
  EXPECT_EQ(*fs.contents("/x/b"), "A");
  EXPECT_EQ(fs.stat("/x/a").error().code, Errc::kNotFound);
  fs.add_file("/d1/f", "1");
  fs.add_file("/d2/g", "2");
  EXPECT_FALSE(fs.rename("/d1", "/d2").ok());
  ASSERT_TRUE(fs.create_dirs("/d3").ok());
  ASSERT_TRUE(fs.rename("/d1", "/d3").ok());
  EXPECT_EQ(*fs.contents("/d3/f"), "1");
  EXPECT_FALSE(fs.rename("/d3", "/d3/inside").ok());
}

TEST(MemoryFileSystem, RemoveAndRemoveAll) {
  MemoryFileSystem fs;
  fs.add_file("/t/a/b", "x");
  EXPECT_TRUE(fs.remove("/t/missing").ok());
  EXPECT_FALSE(fs.remove("/t/a").ok());  // not empty
  ASSERT_TRUE(fs.remove_all("/t").ok());
  EXPECT_EQ(fs.stat("/t").error().code, Errc::kNotFound);
  EXPECT_TRUE(fs.remove_all("/t").ok());
}

TEST(MemoryFileSystem, SymlinksAreFollowedByStatButNotLstat) {
  MemoryFileSystem fs;
  fs.add_file("/blobs/abc", "weights");
  fs.add_symlink("/snap/model.bin", "../blobs/abc");
  fs.add_symlink("/snapdir", "/snap");
  EXPECT_TRUE(fs.lstat("/snap/model.bin")->is_symlink);
  EXPECT_TRUE(fs.stat("/snap/model.bin")->is_regular);
  EXPECT_EQ(*fs.read_file("/snapdir/model.bin"), "weights");
  fs.add_symlink("/loop", "/loop");
  EXPECT_FALSE(fs.stat("/loop").ok());
}

TEST(MemoryFileSystem, TimestampsIncreaseAndCanBeSet) {
  MemoryFileSystem fs;
  fs.add_file("/f", "x");
  auto before = *fs.stat("/f");
  ASSERT_TRUE(fs.touch("/f").ok());
  auto after = *fs.stat("/f");
  EXPECT_GT(after.mtime_ns, before.mtime_ns);
  ASSERT_TRUE(fs.set_mtime("/f", 1000).ok());
  EXPECT_EQ(fs.stat("/f")->mtime_ns, 1000);
  EXPECT_GT(fs.stat("/f")->ctime_ns, after.ctime_ns);  // like utimensat
  ASSERT_TRUE(fs.set_mode("/f", 0444).ok());
  EXPECT_EQ(fs.stat("/f")->mode, 0444u);
}

TEST(MemoryFileSystem, DropUnsyncedKeepsOnlySyncedBytes) {
  MemoryFileSystem fs;
  ASSERT_TRUE(write_text(fs, "/synced", "durable", true).ok());
  ASSERT_TRUE(write_text(fs, "/unsynced", "volatile", false).ok());
  {
    auto f = fs.open_for_write("/partial");
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->append(as_bytes("first")).ok());
    ASSERT_TRUE((*f)->sync().ok());
    ASSERT_TRUE((*f)->append(as_bytes("second")).ok());
  }
  fs.drop_unsynced();
  EXPECT_EQ(*fs.contents("/synced"), "durable");
  EXPECT_EQ(*fs.contents("/unsynced"), "");
  EXPECT_EQ(*fs.contents("/partial"), "first");
}

TEST(MemoryFileSystem, LocksExcludeUntilReleased) {
  MemoryFileSystem fs;
  auto a = fs.lock("/l");
  ASSERT_TRUE(a.ok());
  ASSERT_NE(*a, nullptr);
  auto b = fs.try_lock("/l");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, nullptr);
  auto other = fs.try_lock("/other");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*other, nullptr);
  bool acquired = false;
  std::thread waiter([&] {
    auto c = fs.lock("/l");
    acquired = c.ok() && *c != nullptr;
  });
  a->reset();
  waiter.join();
  EXPECT_TRUE(acquired);
}

}  // namespace
}  // namespace mb
