#include "release/signing.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "release/release_test_support.h"

namespace mb {
namespace {

using testing_release::put;

class SigningTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(generate_key_pair(*m_fs, dir() / "k").ok()); }
  fs::path dir() const { return m_tmp.path(); }
  std::unique_ptr<FileSystem> m_fs = make_real_file_system();
  TempDir m_tmp{"signing-test"};
};

TEST_F(SigningTest, KeyPairFilesAndModes) {
  struct stat st {};
  ASSERT_EQ(::stat((dir() / "k.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(testing_release::get(dir() / "k.pub").find("BEGIN PUBLIC KEY"), std::string::npos);
  // Never overwrites a key.
  Status again = generate_key_pair(*m_fs, dir() / "k");
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().to_string().find("k.key"), std::string::npos);
}

TEST_F(SigningTest, SignsAndVerifies) {
  auto sig = sign_message(*m_fs, dir() / "k.key", "hello manifest\n");
  ASSERT_TRUE(sig.ok()) << sig.error().to_string();
  EXPECT_EQ(sig->rfind("ed25519 ", 0), 0u);
  EXPECT_TRUE(verify_signature(*m_fs, dir() / "k.pub", "hello manifest\n", *sig, "sig").ok());
  // Ed25519 is deterministic: the same key and message give the same bytes.
  EXPECT_EQ(*sig, *sign_message(*m_fs, dir() / "k.key", "hello manifest\n"));
}

TEST_F(SigningTest, RejectsAnyChange) {
  std::string sig = *sign_message(*m_fs, dir() / "k.key", "hello manifest\n");
  Status changed = verify_signature(*m_fs, dir() / "k.pub", "hello manifesT\n", sig, "the-sig");
  ASSERT_FALSE(changed.ok());
  EXPECT_EQ(changed.error().code, Errc::kCorrupt);
  EXPECT_NE(changed.error().to_string().find("the-sig"), std::string::npos);
  std::string bad = sig;
  bad[20] = bad[20] == '0' ? '1' : '0';
  EXPECT_FALSE(verify_signature(*m_fs, dir() / "k.pub", "hello manifest\n", bad, "sig").ok());
  EXPECT_FALSE(verify_signature(*m_fs, dir() / "k.pub", "hello manifest\n", "garbage", "sig").ok());
  // Another key pair's public key does not verify it.
  ASSERT_TRUE(generate_key_pair(*m_fs, dir() / "other").ok());
  EXPECT_FALSE(verify_signature(*m_fs, dir() / "other.pub", "hello manifest\n", sig, "sig").ok());
}

TEST_F(SigningTest, BadKeysAreInputErrorsNamingTheFile) {
  auto missing = sign_message(*m_fs, dir() / "nothere.key", "x");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::kInvalidInput);
  EXPECT_NE(missing.error().to_string().find("nothere.key"), std::string::npos);
  put(dir() / "junk.key", "not a key\n");
  auto junk = sign_message(*m_fs, dir() / "junk.key", "x");
  ASSERT_FALSE(junk.ok());
  EXPECT_EQ(junk.error().code, Errc::kInvalidInput);
  // A public key is not a private key.
  EXPECT_FALSE(sign_message(*m_fs, dir() / "k.pub", "x").ok());
}

}  // namespace
}  // namespace mb
