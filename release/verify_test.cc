#include "release/verify.h"

#include <gtest/gtest.h>

#include "cache/digest.h"
#include "release/manifest.h"
#include "release/release_test_support.h"
#include "release/signing.h"

namespace mb {
namespace {

using namespace testing_release;

// A signed release made by hand: the manifest lists t/a.bin and t/sub/b.txt.
class VerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    put(dir() / "t/a.bin", std::string("\x00\x01\x02weights", 10));
    put(dir() / "t/sub/b.txt", "config\n");
    nlohmann::json files = nlohmann::json::object();
    for (const char* rel : {"t/a.bin", "t/sub/b.txt"}) {
      std::string bytes = get(dir() / rel);
      files[rel] = {{"digest", "sha256:" + digest_string(bytes).hex()}, {"size", bytes.size()}};
    }
    nlohmann::json m = {{"format_version", 1}, {"target", "t"}, {"files", files}};
    const std::string text = manifest_text(m);
    put(dir() / "manifest.json", text);
    ASSERT_TRUE(generate_key_pair(*m_fs, keys() / "k").ok());
    put(dir() / "manifest.sig", *sign_message(*m_fs, keys() / "k.key", text));
  }
  fs::path dir() const { return m_tmp.path() / "release"; }
  fs::path keys() const { return m_tmp.path() / "keys"; }
  Result<VerifyResult> verify(bool with_key = true) {
    return verify_release(*m_fs, dir(), with_key ? std::optional<fs::path>(keys() / "k.pub") : std::nullopt);
  }
  std::unique_ptr<FileSystem> m_fs = make_real_file_system();
  TempDir m_tmp{"verify-test"};
};

TEST_F(VerifyTest, AnIntactReleasePasses) {
  auto r = verify();
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_TRUE(r->ok()) << r->problems.front();
  EXPECT_EQ(r->files, 2u);
  EXPECT_TRUE(r->signature_checked);
}

TEST_F(VerifyTest, ChangingAnyOneByteAnywhereFails) {
  for (const char* rel : {"t/a.bin", "t/sub/b.txt", "manifest.json", "manifest.sig"}) {
    const std::string original = get(dir() / rel);
    for (size_t pos = 0; pos < original.size(); ++pos) {
      std::string changed = original;
      changed[pos] = static_cast<char>(changed[pos] ^ 0x20);
      put(dir() / rel, changed);
      auto r = verify();
      // Either the manifest no longer parses (an error) or a problem is found.
      EXPECT_TRUE(!r.ok() || !r->ok()) << rel << " byte " << pos;
    }
    put(dir() / rel, original);
  }
  ASSERT_TRUE(verify()->ok());
}

TEST_F(VerifyTest, NamesTheChangedMissingAndExtraFiles) {
  put(dir() / "t/sub/b.txt", "CONFIG\n");  // same size, other bytes
  fs::remove(dir() / "t/a.bin");
  put(dir() / "t/extra.txt", "x");
  auto r = verify();
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->problems.size(), 3u);
  std::string all = r->problems[0] + "\n" + r->problems[1] + "\n" + r->problems[2];
  EXPECT_NE(all.find("t/a.bin: missing"), std::string::npos) << all;
  EXPECT_NE(all.find("t/sub/b.txt: content changed"), std::string::npos) << all;
  EXPECT_NE(all.find("t/extra.txt: not in the manifest"), std::string::npos) << all;
}

TEST_F(VerifyTest, SignatureRequiredOnlyWithAKey) {
  fs::remove(dir() / "manifest.sig");
  auto unsigned_ok = verify(false);
  ASSERT_TRUE(unsigned_ok.ok());
  EXPECT_TRUE(unsigned_ok->ok());
  auto needs_sig = verify(true);
  ASSERT_TRUE(needs_sig.ok());
  ASSERT_EQ(needs_sig->problems.size(), 1u);
  EXPECT_NE(needs_sig->problems[0].find("manifest.sig: missing"), std::string::npos);
}

TEST_F(VerifyTest, BadInputs) {
  auto no_key = verify_release(*m_fs, dir(), keys() / "missing.pub");
  ASSERT_FALSE(no_key.ok());
  EXPECT_EQ(no_key.error().code, Errc::kInvalidInput);
  EXPECT_NE(no_key.error().to_string().find("missing.pub"), std::string::npos);
  auto no_manifest = verify_release(*m_fs, m_tmp.path(), std::nullopt);
  ASSERT_FALSE(no_manifest.ok());
  EXPECT_NE(no_manifest.error().to_string().find("manifest.json"), std::string::npos);
  put(dir() / "manifest.json", "{\"format_version\": 7, \"files\": {}}");
  auto newer = verify(false);
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.error().code, Errc::kUnsupported);
}

}  // namespace
}  // namespace mb
