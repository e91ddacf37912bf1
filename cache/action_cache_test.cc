#include "cache/action_cache.h"

#include <gtest/gtest.h>

#include "base/fs_test_support.h"
#include "cache/cache.h"
#include "cache/test_util.h"

namespace mb {
namespace {

using testing::build_step;
using testing::count_warnings;
using testing::key_of;
using testing::write_text;

class ActionCacheTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(m_cache.init().ok()); }

  ActionEntry build(std::string_view name) {
    auto e =
        build_step(m_cache, key_of(name), {{"model.bin", "weights of " + std::string(name)}, {"cfg/c.json", "{}"}});
    EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.error().to_string());
    return e.ok() ? *e : ActionEntry{};
  }
  std::optional<ActionEntry> lookup(std::string_view name) {
    auto r = m_cache.lookup(key_of(name));
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : std::nullopt;
  }

  MemoryFileSystem m_fs;
  RecordingReporter m_reporter;
  Cache m_cache{m_fs, "/cache", m_reporter};
};

TEST_F(ActionCacheTest, StoreThenLookupRoundTrips) {
  ActionEntry stored = build("k");
  auto hit = lookup("k");
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->key, key_of("k"));
  EXPECT_EQ(hit->kind, "test");
  ASSERT_EQ(hit->outputs.size(), 2u);
  EXPECT_EQ(hit->outputs[0].path, "cfg/c.json");
  EXPECT_EQ(hit->outputs[1].path, "model.bin");
  EXPECT_EQ(hit->outputs[1].digest, digest_string("weights of k"));
  EXPECT_EQ(hit->outputs[1].size, 12u);
  EXPECT_EQ(hit->output_digest, stored.output_digest);
  EXPECT_EQ(hit->output_digest, tree_digest(tree_entries_of(hit->outputs)));
  EXPECT_EQ(hit->report, (nlohmann::json{{"files", 2}}));
  EXPECT_EQ(count_warnings(m_reporter), 0u);
}

TEST_F(ActionCacheTest, AMissingEntryIsAQuietMiss) {
  EXPECT_FALSE(lookup("never built").has_value());
  EXPECT_EQ(count_warnings(m_reporter), 0u);
}

TEST_F(ActionCacheTest, AHitIsStatOnlyAndTouchesTheEntry) {
  build("k");
  ASSERT_TRUE(m_fs.set_mtime(m_cache.actions().entry_path(key_of("k")), 1000).ok());
  m_fs.clear_accesses();
  ASSERT_TRUE(lookup("k").has_value());
  // Only the entry itself is read: the blobs are checked with stat().
  EXPECT_EQ(m_fs.read_paths(), std::vector<fs::path>{m_cache.actions().entry_path(key_of("k"))});
  EXPECT_GT(m_fs.stat(m_cache.actions().entry_path(key_of("k")))->mtime_ns, 1000);
}

TEST_F(ActionCacheTest, CorruptEntryIsAMissWithAWarning) {
  build("k");
  fs::path path = m_cache.actions().entry_path(key_of("k"));
  std::string good = *m_fs.contents(path);
  for (std::string bad : {std::string("{not json"), std::string("[]"), good.substr(0, good.size() / 2),
                          std::string(R"({"format": "modelbuild-action", "version": "1"})")}) {
    m_fs.add_file(path, bad);
    RecordingReporter reporter;
    ActionCache ac(m_fs, "/cache", m_cache.cas(), reporter);
    auto r = ac.lookup(key_of("k"));
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->has_value()) << bad;
    EXPECT_EQ(count_warnings(reporter), 1u) << bad;
  }
}

TEST_F(ActionCacheTest, EditedFieldsAreRejected) {
  ActionEntry e = build("k");
  fs::path path = m_cache.actions().entry_path(key_of("k"));
  auto edit = [&](auto change) {
    nlohmann::json j = entry_to_json(e);
    change(j);
    m_fs.add_file(path, j.dump());
    return lookup("k").has_value();
  };
  EXPECT_TRUE(edit([](nlohmann::json&) {}));
  EXPECT_FALSE(edit([](nlohmann::json& j) { j["outputs"][0]["path"] = "../../etc/passwd"; }));
  EXPECT_FALSE(edit([](nlohmann::json& j) { j["outputs"][0]["size"] = 3; }));
  EXPECT_FALSE(edit([](nlohmann::json& j) { j["key"] = key_of("other").hex(); }));
  EXPECT_FALSE(edit([](nlohmann::json& j) { j["outputs"][1] = j["outputs"][0]; }));
  EXPECT_FALSE(edit([](nlohmann::json& j) { j["output_digest"] = key_of("x").hex(); }));
  EXPECT_FALSE(edit([](nlohmann::json& j) { j["digest_function"] = "blake3"; }));
}

TEST_F(ActionCacheTest, NewerFormatIsAMissWithAWarning) {
  ActionEntry e = build("k");
  nlohmann::json j = entry_to_json(e);
  j["version"] = ActionCache::kEntryVersion + 1;
  m_fs.add_file(m_cache.actions().entry_path(key_of("k")), j.dump());
  EXPECT_FALSE(lookup("k").has_value());
  EXPECT_EQ(count_warnings(m_reporter, "newer"), 1u);
}

TEST_F(ActionCacheTest, MissingBlobIsAMissWithAWarning) {
  ActionEntry e = build("k");
  ASSERT_TRUE(m_fs.remove(m_cache.cas().blob_path(e.outputs[1].digest)).ok());
  EXPECT_FALSE(lookup("k").has_value());
  EXPECT_EQ(count_warnings(m_reporter, "missing"), 1u);
}

TEST_F(ActionCacheTest, FlippedByteInABlobIsAMissWithAWarning) {
  ActionEntry e = build("k");
  fs::path blob = m_cache.cas().blob_path(e.outputs[1].digest);
  std::string bytes = *m_fs.contents(blob);
  bytes[3] = static_cast<char>(bytes[3] ^ 0x20);
  ASSERT_TRUE(write_text(m_fs, blob, bytes).ok());  // in place, as through a hard link
  EXPECT_FALSE(lookup("k").has_value());
  EXPECT_EQ(count_warnings(m_reporter, "verification"), 1u);
  EXPECT_FALSE(m_cache.cas().contains(e.outputs[1].digest)) << "the corrupt blob is deleted";
}

TEST_F(ActionCacheTest, TruncatedBlobIsAMiss) {
  ActionEntry e = build("k");
  ASSERT_TRUE(write_text(m_fs, m_cache.cas().blob_path(e.outputs[1].digest), "w").ok());
  EXPECT_FALSE(lookup("k").has_value());
  EXPECT_EQ(count_warnings(m_reporter), 1u);
}

TEST_F(ActionCacheTest, TouchedButIntactBlobIsRehashedOnceThenTrusted) {
  ActionEntry e = build("k");
  fs::path blob = m_cache.cas().blob_path(e.outputs[1].digest);
  ASSERT_TRUE(m_fs.touch(blob).ok());
  m_fs.clear_accesses();
  ASSERT_TRUE(lookup("k").has_value());
  auto reads = m_fs.read_paths();
  EXPECT_NE(std::find(reads.begin(), reads.end(), blob), reads.end()) << "re-hashed";
  m_fs.clear_accesses();
  ASSERT_TRUE(lookup("k").has_value());
  reads = m_fs.read_paths();
  EXPECT_EQ(std::find(reads.begin(), reads.end(), blob), reads.end()) << "entry refreshed: stat-only again";
  EXPECT_EQ(count_warnings(m_reporter), 0u);
}

TEST_F(ActionCacheTest, SharedBlobReplacedByAnotherCommitStaysUsable) {
  build("a");
  // Same bytes under another key: the blob is replaced by the new copy.
  ASSERT_TRUE(build_step(m_cache, key_of("b"), {{"model.bin", "weights of a"}, {"cfg/c.json", "{}"}}).ok());
  EXPECT_TRUE(lookup("a").has_value());
  EXPECT_TRUE(lookup("b").has_value());
  EXPECT_EQ(count_warnings(m_reporter), 0u);
}

TEST_F(ActionCacheTest, ListFindsEveryEntry) {
  build("a");
  build("b");
  auto keys = m_cache.actions().list();
  ASSERT_TRUE(keys.ok());
  std::sort(keys->begin(), keys->end());
  std::vector<Digest> want{key_of("a"), key_of("b")};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(*keys, want);
}

}  // namespace
}  // namespace mb
