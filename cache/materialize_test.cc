#include "cache/materialize.h"

#include <gtest/gtest.h>

#include "base/fs_test_support.h"
#include "cache/cache.h"
#include "cache/test_util.h"

namespace mb {
namespace {

using testing::build_step;
using testing::key_of;
using testing::write_text;

const std::vector<std::pair<std::string, std::string>> kOutputs = {
    {"model.safetensors", std::string(4096, 'm')}, {"config.json", "{}"}, {"tok/tokenizer.json", "tok"}};

std::vector<std::string> files_under(FileSystem& fs, const fs::path& dir, const std::string& prefix = "") {
  std::vector<std::string> out;
  auto names = fs.list_dir(dir);  // kept alive: *fs.list_dir() in the loop header would dangle
  if (!names.ok()) return out;
  for (const std::string& name : *names) {
    std::string rel = prefix.empty() ? name : prefix + "/" + name;
    if (fs.lstat(dir / name)->is_dir) {
      auto sub = files_under(fs, dir / name, rel);
      out.insert(out.end(), sub.begin(), sub.end());
    } else {
      out.push_back(rel);
    }
  }
  return out;
}

TEST(MaterializeReal, HardLinksReadOnlyBlobsAndTheSecondCallIsANoOp) {
  testing::TempDir dir;
  auto fs = make_real_file_system();
  NullReporter reporter;
  Cache cache(*fs, dir.path() / "cache", reporter);
  ASSERT_TRUE(cache.init().ok());
  auto entry = build_step(cache, key_of("k"), kOutputs);
  ASSERT_TRUE(entry.ok());
  fs::path dest = dir.path() / "out" / "model";
  auto r = cache.materialize(*entry, dest);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_FALSE(r->noop);
  EXPECT_EQ(r->files, 3u);
  // ext4 has no reflink, so hard links; a filesystem with reflinks does better.
  EXPECT_NE(r->link_kind, LinkKind::kCopy);
  for (const auto& [rel, content] : kOutputs) {
    auto st = fs->stat(dest / rel);
    ASSERT_TRUE(st.ok());
    if (r->link_kind == LinkKind::kHardlink) {
      EXPECT_GT(st->nlink, 1u) << rel;
    }
    EXPECT_EQ(st->mode & 0222, 0u) << rel << " must be read-only";
    EXPECT_EQ(*fs->read_file(dest / rel), content);
  }
  auto again = cache.materialize(*entry, dest);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->noop);
  EXPECT_EQ(again->link_kind, r->link_kind);
  FileDigestCache digests(*fs, dir.path() / "state", reporter);
  EXPECT_EQ(*digests.digest_of_tree(dest, 2), entry->output_digest) << "the marker is not content";
  EXPECT_EQ(fs->list_dir(dir.path() / "out")->size(), 1u) << "no temp sibling left";
}

class MaterializeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(m_cache.init().ok());
    auto e = build_step(m_cache, key_of("k"), kOutputs);
    ASSERT_TRUE(e.ok());
    m_entry = *e;
  }
  MemoryFileSystem m_fs;
  NullReporter m_reporter;
  Cache m_cache{m_fs, "/c", m_reporter};
  ActionEntry m_entry;
};

TEST_F(MaterializeTest, TheNoOpPathLinksNothingAndReadsNoBlob) {
  ASSERT_TRUE(m_cache.materialize(m_entry, "/w/model").ok());
  for (const OutputFile& o : m_entry.outputs) {
    EXPECT_EQ(m_fs.stat(fs::path("/w/model") / o.path)->ino, m_fs.stat(m_cache.cas().blob_path(o.digest))->ino);
  }
  m_fs.clear_accesses();
  auto r = m_cache.materialize(m_entry, "/w/model");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->noop);
  EXPECT_EQ(r->link_kind, LinkKind::kHardlink);
  EXPECT_TRUE(m_fs.linked_paths().empty());
  EXPECT_TRUE(m_fs.written_paths().empty());
  EXPECT_TRUE(m_fs.read_paths().empty()) << "hard links are proven by inode: stat only";
}

TEST_F(MaterializeTest, ReflinksAreProvenByTheMarker) {
  m_fs.set_reflink_supported(true);
  auto r = m_cache.materialize(m_entry, "/w/model");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->link_kind, LinkKind::kReflink);
  EXPECT_EQ(m_fs.stat("/w/model/config.json")->mode, 0444u);
  m_fs.clear_accesses();
  auto again = m_cache.materialize(m_entry, "/w/model");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->noop);
  EXPECT_EQ(again->link_kind, LinkKind::kReflink);
  EXPECT_EQ(m_fs.read_paths(), std::vector<fs::path>{"/w/model/.modelbuild-materialized"});
  EXPECT_TRUE(m_fs.linked_paths().empty());
  // Editing a reflinked copy is seen (its fingerprint changed) and undone.
  ASSERT_TRUE(write_text(m_fs, "/w/model/config.json", "[]").ok());
  auto redo = m_cache.materialize(m_entry, "/w/model");
  ASSERT_TRUE(redo.ok());
  EXPECT_FALSE(redo->noop);
  EXPECT_EQ(*m_fs.contents("/w/model/config.json"), "{}");
}

TEST_F(MaterializeTest, ExtraOrMissingFilesAreReplacedByExactlyTheOutputs) {
  ASSERT_TRUE(m_cache.materialize(m_entry, "/w/model").ok());
  m_fs.add_file("/w/model/stray.txt", "left over");
  auto r = m_cache.materialize(m_entry, "/w/model");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->noop);
  EXPECT_EQ(files_under(m_fs, "/w/model"), (std::vector<std::string>{".modelbuild-materialized", "config.json",
                                                                     "model.safetensors", "tok/tokenizer.json"}));
  ASSERT_TRUE(m_fs.remove("/w/model/tok/tokenizer.json").ok());
  EXPECT_FALSE(m_cache.materialize(m_entry, "/w/model")->noop);
  EXPECT_EQ(*m_fs.contents("/w/model/tok/tokenizer.json"), "tok");
  EXPECT_EQ(m_fs.list_dir("/w")->size(), 1u) << "no temp sibling left";
}

TEST_F(MaterializeTest, ADifferentEntryReplacesTheDirectory) {
  ASSERT_TRUE(m_cache.materialize(m_entry, "/w/model").ok());
  auto other = build_step(m_cache, key_of("other"), {{"only.bin", "other"}});
  ASSERT_TRUE(other.ok());
  auto r = m_cache.materialize(*other, "/w/model");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(files_under(m_fs, "/w/model"), (std::vector<std::string>{".modelbuild-materialized", "only.bin"}));
}

TEST_F(MaterializeTest, ExecutablesGetTheirOwnInode) {
  auto staging = m_cache.begin(key_of("exe"));
  ASSERT_TRUE(write_text(m_fs, staging->dir() / "run.sh", "#!/bin/sh\n").ok());
  ASSERT_TRUE(m_fs.set_mode(staging->dir() / "run.sh", 0755).ok());
  auto entry = m_cache.commit(*staging, "test", {});
  ASSERT_TRUE(entry.ok());
  auto r = m_cache.materialize(*entry, "/w/exe");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->link_kind, LinkKind::kCopy);
  EXPECT_EQ(m_fs.stat("/w/exe/run.sh")->mode, 0555u);
  EXPECT_NE(m_fs.stat("/w/exe/run.sh")->ino, m_fs.stat(m_cache.cas().blob_path(entry->outputs[0].digest))->ino);
  EXPECT_TRUE(m_cache.materialize(*entry, "/w/exe")->noop);
}

TEST(MaterializeFaults, AFailureAtAnyStepLeavesTheOldDirectoryOrTheNewOne) {
  for (int n = 1; n < 100; ++n) {
    MemoryFileSystem memory;
    FaultyFileSystem fs(memory);
    NullReporter reporter;
    Cache cache(fs, "/c", reporter);
    ASSERT_TRUE(cache.init().ok());
    auto old_entry = build_step(cache, key_of("old"), {{"a", "old a"}, {"b", "old b"}});
    auto new_entry = build_step(cache, key_of("new"), {{"a", "new a"}, {"c", "new c"}});
    ASSERT_TRUE(old_entry.ok() && new_entry.ok());
    ASSERT_TRUE(cache.materialize(*old_entry, "/w/m").ok());
    fs.fail_op_after(n);
    auto r = cache.materialize(*new_entry, "/w/m");
    fs.clear_faults();
    auto files = files_under(memory, "/w/m");
    bool is_old = files == std::vector<std::string>{".modelbuild-materialized", "a", "b"} &&
                  *memory.contents("/w/m/a") == "old a";
    bool is_new = files == std::vector<std::string>{".modelbuild-materialized", "a", "c"} &&
                  *memory.contents("/w/m/a") == "new a";
    EXPECT_TRUE(is_old || is_new) << "fault " << n;
    if (r.ok()) {
      EXPECT_TRUE(is_new);
      break;
    }
  }
}

}  // namespace
}  // namespace mb
