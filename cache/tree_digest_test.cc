#include "cache/tree_digest.h"

#include <gtest/gtest.h>

namespace mb {
namespace {

std::vector<TreeEntry> sample() {
  return {{"config.json", digest_string("c"), 1},
          {"model.safetensors", digest_string("m"), 1},
          {"sub/a.bin", digest_string("a"), 1}};
}

TEST(TreeDigest, IndependentOfInputOrder) {
  auto a = sample();
  auto b = sample();
  std::reverse(b.begin(), b.end());
  EXPECT_EQ(tree_digest(a), tree_digest(b));
}

TEST(TreeDigest, PathDigestAndSizeAllCount) {
  Digest base = tree_digest(sample());
  auto s = sample();
  s[0].path = "config2.json";
  EXPECT_NE(tree_digest(s), base);
  s = sample();
  s[1].digest = digest_string("other");
  EXPECT_NE(tree_digest(s), base);
  s = sample();
  s[2].size = 2;
  EXPECT_NE(tree_digest(s), base);
  s = sample();
  s.pop_back();
  EXPECT_NE(tree_digest(s), base);
  EXPECT_NE(tree_digest({}), base);
}

TEST(TreeDigest, EmptyTreeIsStable) {
  EXPECT_EQ(tree_digest({}), digest_string(std::string("MBTR\x01\x00\x00\x00", 8) + std::string(8, '\0')));
}

TEST(TreeDigest, ValidRelativePaths) {
  EXPECT_TRUE(is_valid_relative_path("a"));
  EXPECT_TRUE(is_valid_relative_path("a/b.c/d"));
  EXPECT_TRUE(is_valid_relative_path(".hidden"));
  EXPECT_FALSE(is_valid_relative_path(""));
  EXPECT_FALSE(is_valid_relative_path("/abs"));
  EXPECT_FALSE(is_valid_relative_path("a//b"));
  EXPECT_FALSE(is_valid_relative_path("a/"));
  EXPECT_FALSE(is_valid_relative_path("../x"));
  EXPECT_FALSE(is_valid_relative_path("a/./b"));
  EXPECT_FALSE(is_valid_relative_path(std::string("a\0b", 3)));
}

}  // namespace
}  // namespace mb
