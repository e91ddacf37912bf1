#include "release/lock_file.h"

#include <gtest/gtest.h>

#include "release/release_test_support.h"

namespace mb {
namespace {

using testing_release::get;
using testing_release::put;

class LockFileTest : public ::testing::Test {
 protected:
  fs::path lock() const { return m_tmp.path() / "modelbuild.lock"; }
  std::unique_ptr<FileSystem> m_fs = make_real_file_system();
  TempDir m_tmp{"lock-test"};
};

TEST_F(LockFileTest, RewrittenOnlyWhenSomethingChanges) {
  nlohmann::json rec = {{"a", {{"state", "ok"}, {"outputs", {{"x", {{"digest", "sha256:1"}, {"size", 1}}}}}}}};
  auto first = update_lock_file(*m_fs, lock(), rec, {"a", "b"});
  ASSERT_TRUE(first.ok()) << first.error().to_string();
  EXPECT_TRUE(*first);
  auto st1 = m_fs->stat(lock());
  auto second = update_lock_file(*m_fs, lock(), rec, {"a", "b"});
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(*second);
  EXPECT_EQ(m_fs->stat(lock())->ino, st1->ino);  // not even replaced by an identical copy

  // Another target's record is merged in; a's stays.
  nlohmann::json b = {{"b", {{"state", "failed"}}}};
  EXPECT_TRUE(*update_lock_file(*m_fs, lock(), b, {"a", "b"}));
  auto j = nlohmann::json::parse(get(lock()));
  EXPECT_EQ(j["targets"]["a"]["state"], "ok");
  EXPECT_EQ(j["targets"]["b"]["state"], "failed");
  // A target removed from the recipe is dropped.
  EXPECT_TRUE(*update_lock_file(*m_fs, lock(), nlohmann::json::object(), {"b"}));
  EXPECT_FALSE(nlohmann::json::parse(get(lock()))["targets"].contains("a"));
}

TEST_F(LockFileTest, CorruptOrNewerLockIsNeverReplacedSilently) {
  put(lock(), "{ not json");
  auto corrupt = update_lock_file(*m_fs, lock(), nlohmann::json::object(), {});
  ASSERT_FALSE(corrupt.ok());
  EXPECT_EQ(corrupt.error().code, Errc::kCorrupt);
  EXPECT_NE(corrupt.error().to_string().find("modelbuild.lock"), std::string::npos);
  EXPECT_EQ(get(lock()), "{ not json");
  put(lock(), R"({"format": 99, "targets": {}})");
  auto newer = update_lock_file(*m_fs, lock(), nlohmann::json::object(), {});
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.error().code, Errc::kUnsupported);
}

}  // namespace
}  // namespace mb
