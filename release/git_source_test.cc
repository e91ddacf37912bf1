#include "release/git_source.h"

#include <gtest/gtest.h>

#include "release/release_test_support.h"

namespace mb {
namespace {

using namespace testing_release;

class GitSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    git_init(repo());
    put(repo() / "adapters/a/w.txt", "version one\n");
    put(repo() / "adapters/a/cfg.json", "{}\n");
    put(repo() / "other.txt", "x\n");
    m_v1 = git_commit_all(repo(), "v1");
    put(repo() / "adapters/a/w.txt", "version two\n");
    m_v2 = git_commit_all(repo(), "v2");
    put(repo() / "other.txt", "y\n");  // a commit that does not touch the adapter
    m_v3 = git_commit_all(repo(), "v3");
    put(repo() / "adapters/a/w.txt", "uncommitted\n");  // the working tree is never read
  }
  fs::path repo() const { return m_tmp.path() / "repo"; }
  fs::path cache() const { return m_tmp.path() / "cache"; }
  SourceDecl pin(const std::string& rev, const std::string& path) const {
    SourceDecl s;
    s.name = "lora";
    s.path = repo();
    s.git = GitPin{".", rev, path};
    s.loc = {"modelbuild.yaml", 4, 3};
    return s;
  }
  std::unique_ptr<FileSystem> m_fs = make_real_file_system();
  TempDir m_tmp{"git-source-test"};
  std::string m_v1, m_v2, m_v3;
};

TEST_F(GitSourceTest, ReadsATreeAtACommitOtherThanHead) {
  auto r = resolve_git_source(*m_fs, pin(m_v1, "adapters/a"), cache());
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->commit, m_v1);
  EXPECT_EQ(get(r->path / "w.txt"), "version one\n");
  EXPECT_EQ(get(r->path / "cfg.json"), "{}\n");
  EXPECT_FALSE(fs::exists(r->path / "other.txt"));
  auto head = resolve_git_source(*m_fs, pin("HEAD", "adapters/a"), cache());
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(get(head->path / "w.txt"), "version two\n");
  EXPECT_NE(head->path, r->path);
}

TEST_F(GitSourceTest, ASingleFileAndTagsAndRelativeRevisions) {
  git(repo(), {"tag", "v1", m_v1});
  auto r = resolve_git_source(*m_fs, pin("v1", "adapters/a/w.txt"), cache());
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->path.filename(), "w.txt");
  EXPECT_EQ(get(r->path), "version one\n");
  auto rel = resolve_git_source(*m_fs, pin("HEAD~2", "adapters/a/w.txt"), cache());
  ASSERT_TRUE(rel.ok());
  EXPECT_EQ(rel->path, r->path);
}

TEST_F(GitSourceTest, SameBytesAtAnotherCommitIsTheSameObject) {
  // v2 and v3 hold the same adapter tree: moving the pin changes nothing.
  auto a = resolve_git_source(*m_fs, pin(m_v2, "adapters/a"), cache());
  auto b = resolve_git_source(*m_fs, pin(m_v3, "adapters/a"), cache());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->commit, b->commit);
  EXPECT_EQ(a->oid, b->oid);
  EXPECT_EQ(a->path, b->path);
}

TEST_F(GitSourceTest, BadPinsNameTheSource) {
  auto unknown = resolve_git_source(*m_fs, pin("no-such-rev", "adapters/a"), cache());
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, Errc::kInvalidInput);
  EXPECT_NE(unknown.error().to_string().find("unknown revision 'no-such-rev'"), std::string::npos);
  EXPECT_NE(unknown.error().to_string().find("source 'lora'"), std::string::npos);
  EXPECT_NE(unknown.error().to_string().find("modelbuild.yaml:4:3"), std::string::npos);

  auto missing = resolve_git_source(*m_fs, pin(m_v1, "adapters/b"), cache());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::kInvalidInput);
  EXPECT_NE(missing.error().to_string().find("path 'adapters/b' is not in commit " + m_v1.substr(0, 12)),
            std::string::npos)
      << missing.error().to_string();

  SourceDecl not_repo = pin("HEAD", "x");
  not_repo.path = m_tmp.path();
  auto nr = resolve_git_source(*m_fs, not_repo, cache());
  ASSERT_FALSE(nr.ok());
  EXPECT_NE(nr.error().to_string().find("is not a git repository"), std::string::npos);
  EXPECT_FALSE(fs::exists(cache() / "git") && !fs::is_empty(cache() / "git"));  // nothing partial
}

}  // namespace
}  // namespace mb
