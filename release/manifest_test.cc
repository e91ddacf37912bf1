#include "release/manifest.h"

#include <gtest/gtest.h>

namespace mb {
namespace {

const char* kGood = R"({"format_version": 1, "files": {"t/a.bin": {"digest": "sha256:)"
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                    R"(", "size": 0}}})";

TEST(ManifestTest, ParsesAndIsCanonical) {
  auto m = parse_manifest(kGood, "m.json");
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  // Sorted keys, fixed indentation: parsing and printing is a fixed point.
  std::string text = manifest_text(*m);
  EXPECT_EQ(manifest_text(*parse_manifest(text, "m.json")), text);
  EXPECT_LT(text.find("\"files\""), text.find("\"format_version\""));
}

TEST(ManifestTest, CorruptJson) {
  auto m = parse_manifest("{\"format_version\": 1, ", "dir/manifest.json");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, Errc::kCorrupt);
  EXPECT_NE(m.error().to_string().find("dir/manifest.json"), std::string::npos);
  EXPECT_FALSE(parse_manifest("[]", "m").ok());
  EXPECT_FALSE(parse_manifest(R"({"format_version": 1})", "m").ok());  // no files
  EXPECT_FALSE(
      parse_manifest(R"({"format_version": 1, "files": {"../x": {"digest": "sha256:00", "size": 1}}})", "m").ok());
  EXPECT_FALSE(parse_manifest(R"({"format_version": 1, "files": {"x": {"digest": "md5:00", "size": 1}}})", "m").ok());
}

TEST(ManifestTest, NewerFormatIsRefused) {
  auto m = parse_manifest(R"({"format_version": 2, "files": {}})", "m.json");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, Errc::kUnsupported);
  EXPECT_NE(m.error().message.find("newer"), std::string::npos);
}

}  // namespace
}  // namespace mb
