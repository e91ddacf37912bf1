#include "cache/content_store.h"

#include <gtest/gtest.h>

#include "base/fs_test_support.h"
#include "cache/test_util.h"

namespace mb {
namespace {

using testing::write_text;

TEST(ContentStore, IngestMovesTheFileIntoAReadOnlyBlob) {
  MemoryFileSystem fs;
  ContentStore cas(fs, "/c");
  ASSERT_TRUE(fs.create_dirs("/c/tmp").ok());
  ASSERT_TRUE(write_text(fs, "/c/tmp/out", "weights").ok());
  auto d = cas.ingest("/c/tmp/out");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, digest_string("weights"));
  std::string hex = d->hex();
  EXPECT_EQ(cas.blob_path(*d), fs::path("/c/cas") / hex.substr(0, 2) / hex.substr(2));
  EXPECT_TRUE(cas.contains(*d));
  EXPECT_EQ(*fs.contents(cas.blob_path(*d)), "weights");
  EXPECT_EQ(fs.stat(cas.blob_path(*d))->mode, 0444u);
  EXPECT_EQ(fs.stat("/c/tmp/out").error().code, Errc::kNotFound);
  auto listed = cas.list();
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(*listed, std::vector<Digest>{*d});
}

TEST(ContentStore, IngestingExistingContentReplacesTheBlobAtomically) {
  MemoryFileSystem fs;
  ContentStore cas(fs, "/c");
  ASSERT_TRUE(fs.create_dirs("/c/tmp").ok());
  ASSERT_TRUE(write_text(fs, "/c/tmp/a", "same").ok());
  ASSERT_TRUE(write_text(fs, "/c/tmp/b", "same").ok());
  auto first = cas.ingest("/c/tmp/a");
  auto second = cas.ingest("/c/tmp/b");
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(*first, *second);
  EXPECT_EQ(*fs.contents(cas.blob_path(*first)), "same");
  EXPECT_EQ(cas.list()->size(), 1u);
  EXPECT_EQ(fs.list_dir("/c/tmp")->size(), 0u);
}

TEST(ContentStore, AHardLinkedOutputIsCopiedSoTheOtherNameStaysIndependent) {
  MemoryFileSystem fs;
  ContentStore cas(fs, "/c");
  fs.add_file("/user/input.bin", "user data");
  ASSERT_TRUE(fs.create_dirs("/c/tmp").ok());
  ASSERT_TRUE(fs.hard_link("/user/input.bin", "/c/tmp/out").ok());
  auto d = cas.ingest("/c/tmp/out");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(fs.stat("/user/input.bin")->mode, 0644u);
  EXPECT_NE(fs.stat("/user/input.bin")->ino, fs.stat(cas.blob_path(*d))->ino);
  EXPECT_EQ(fs.stat("/user/input.bin")->nlink, 1u);
}

TEST(ContentStore, VerifyDeletesACorruptBlob) {
  MemoryFileSystem fs;
  ContentStore cas(fs, "/c");
  ASSERT_TRUE(fs.create_dirs("/c/tmp").ok());
  ASSERT_TRUE(write_text(fs, "/c/tmp/out", "good bytes").ok());
  Digest d = *cas.ingest("/c/tmp/out");
  EXPECT_TRUE(cas.verify(d).ok());
  ASSERT_TRUE(write_text(fs, cas.blob_path(d), "bad! bytes").ok());
  Status st = cas.verify(d);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kCorrupt);
  EXPECT_FALSE(cas.contains(d));
  EXPECT_EQ(cas.verify(d).error().code, Errc::kNotFound);
}

TEST(ContentStore, IngestRejectsNonRegularFiles) {
  MemoryFileSystem fs;
  ContentStore cas(fs, "/c");
  ASSERT_TRUE(fs.create_dirs("/c/tmp/dir").ok());
  EXPECT_FALSE(cas.ingest("/c/tmp/dir").ok());
  EXPECT_FALSE(cas.ingest("/c/tmp/missing").ok());
}

}  // namespace
}  // namespace mb
