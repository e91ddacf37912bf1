#include "cache/digest.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "base/fs_test_support.h"

namespace mb {
namespace {

TEST(Digest, KnownSha256Vectors) {
  EXPECT_EQ(digest_string("").hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(digest_string("abc").hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Digest, HasherIsIncrementalAndReusable) {
  Hasher h;
  h.update("a");
  h.update("bc");
  EXPECT_EQ(h.finish(), digest_string("abc"));
  h.update("");
  EXPECT_EQ(h.finish(), digest_string(""));
}

TEST(Digest, HexRoundTripAndRejectsBadHex) {
  Digest d = digest_string("x");
  auto back = Digest::from_hex(d.hex());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, d);
  EXPECT_EQ(d.short_hex(), d.hex().substr(0, 12));
  EXPECT_FALSE(Digest::from_hex("abc").ok());
  EXPECT_FALSE(Digest::from_hex(std::string(64, 'A')).ok());  // one spelling: lowercase
  EXPECT_FALSE(Digest::from_hex(std::string(63, '0') + "g").ok());
  EXPECT_TRUE(Digest().is_zero());
  EXPECT_FALSE(d.is_zero());
}

TEST(Digest, FileDigestStreamsInChunksWithProgress) {
  MemoryFileSystem fs;
  std::string data(9 * 1024 * 1024 + 5, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 % 251);
  fs.add_file("/f", data);
  std::vector<uint64_t> progress;
  auto d = digest_file(fs, "/f", [&](uint64_t done) { progress.push_back(done); });
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, digest_string(data));
  ASSERT_EQ(progress.size(), 3u);  // 4 MiB, 8 MiB, the rest
  EXPECT_EQ(progress.front(), 4u << 20);
  EXPECT_EQ(progress.back(), data.size());
  EXPECT_EQ(digest_file(fs, "/missing").error().code, Errc::kNotFound);
}

TEST(Digest, ListsShardedDirectoriesInBothNamings) {
  const Digest a = digest_string("a"), b = digest_string("b");
  const std::string ha = a.hex(), hb = b.hex();
  MemoryFileSystem fs;
  // Whole names (the action cache): xx/<all 64 digits>.
  fs.add_file("/ac/" + ha.substr(0, 2) + "/" + ha, "");
  fs.add_file("/ac/" + hb.substr(0, 2) + "/" + hb, "");
  fs.add_file("/ac/" + hb.substr(0, 2) + "/" + hb + ".tmp", "");  // not a digest
  fs.add_file("/ac/00/" + ha, "");                                // in the wrong shard
  fs.add_file("/ac/readme", "");
  auto whole = list_sharded_digests(fs, "/ac", true);
  ASSERT_TRUE(whole.ok());
  std::sort(whole->begin(), whole->end(), [](const Digest& x, const Digest& y) { return x.hex() < y.hex(); });
  std::vector<Digest> want = {a, b};
  std::sort(want.begin(), want.end(), [](const Digest& x, const Digest& y) { return x.hex() < y.hex(); });
  EXPECT_EQ(*whole, want);
  // The rest of the digits (the content store): xx/<62 digits>.
  fs.add_file("/cas/" + ha.substr(0, 2) + "/" + ha.substr(2), "");
  fs.add_file("/cas/" + ha.substr(0, 2) + "/" + ha, "");  // 66 digits: not a digest
  auto rest = list_sharded_digests(fs, "/cas", false);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(*rest, std::vector<Digest>{a});
  auto missing = list_sharded_digests(fs, "/none", false);
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->empty());
}

}  // namespace
}  // namespace mb
