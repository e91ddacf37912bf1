#include <gtest/gtest.h>

#include "base/fs_test_support.h"

namespace mb {
namespace {

TEST(FaultyFileSystem, FailsOnlyTheNthWrite) {
  MemoryFileSystem memory;
  FaultyFileSystem fs(memory);
  auto f = fs.open_for_write("/f");
  ASSERT_TRUE(f.ok());
  fs.fail_write_after(2);
  EXPECT_TRUE((*f)->append(as_bytes("1")).ok());
  EXPECT_FALSE((*f)->append(as_bytes("2")).ok());
  EXPECT_TRUE((*f)->append(as_bytes("3")).ok());
  EXPECT_EQ(*memory.contents("/f"), "13");
}

TEST(FaultyFileSystem, StickyWriteFaultsLastUntilCleared) {
  MemoryFileSystem memory;
  FaultyFileSystem fs(memory);
  auto f = fs.open_for_write("/f");
  ASSERT_TRUE(f.ok());
  fs.fail_write_after(2, /*sticky=*/true);
  EXPECT_TRUE((*f)->append(as_bytes("1")).ok());
  auto st = (*f)->append(as_bytes("2"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kIo);
  EXPECT_FALSE((*f)->write_at(0, as_bytes("3")).ok());
  EXPECT_TRUE((*f)->sync().ok());  // only data writes are counted
  fs.clear_faults();
  EXPECT_TRUE((*f)->append(as_bytes("4")).ok());
  EXPECT_EQ(*memory.contents("/f"), "14");
}

TEST(FaultyFileSystem, FailsTheNthOperationOfAnyKind) {
  MemoryFileSystem memory;
  FaultyFileSystem fs(memory);
  fs.fail_op_after(2, /*sticky=*/true);
  EXPECT_TRUE(fs.create_dirs("/d").ok());
  EXPECT_FALSE(fs.rename("/d", "/e").ok());
  EXPECT_FALSE(fs.remove("/d").ok());
  EXPECT_TRUE(memory.stat("/d").ok());
  EXPECT_EQ(fs.op_count(), 3);
}

TEST(FaultyFileSystem, WriteFileAtomicLeavesTargetUntouchedOnEveryFault) {
  for (int n = 1;; ++n) {
    MemoryFileSystem memory;
    memory.add_file("/dir/target", "old");
    FaultyFileSystem fs(memory);
    fs.fail_op_after(n);
    Status st = write_file_atomic(fs, "/dir/target", std::string_view("new"));
    fs.clear_faults();
    auto names = memory.list_dir("/dir");
    ASSERT_TRUE(names.ok());
    if (st.ok()) {
      EXPECT_EQ(*memory.contents("/dir/target"), "new");
      break;
    }
    std::string now = *memory.contents("/dir/target");
    // Either the rename had not happened, or only the final fsync failed.
    EXPECT_TRUE(now == "old" || now == "new") << n;
    if (now == "old") {
      EXPECT_EQ(names->size(), 1u) << "temp file left behind at fault " << n;
    }
    ASSERT_LT(n, 50);
  }
}

TEST(FaultyFileSystem, CrashDropsUnsyncedDataOnly) {
  MemoryFileSystem memory;
  FaultyFileSystem fs(memory);
  ASSERT_TRUE(write_file_atomic(fs, "/durable", std::string_view("kept")).ok());
  {
    auto f = fs.open_for_write("/volatile");
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->append(as_bytes("lost")).ok());
  }
  ASSERT_TRUE(fs.crash().ok());
  EXPECT_EQ(*memory.contents("/durable"), "kept");
  EXPECT_EQ(*memory.contents("/volatile"), "");
}

TEST(FaultyFileSystem, CrashNeedsAMemoryFileSystem) {
  auto real = make_real_file_system();
  FaultyFileSystem fs(*real);
  EXPECT_EQ(fs.crash().error().code, Errc::kUnsupported);
}

}  // namespace
}  // namespace mb
