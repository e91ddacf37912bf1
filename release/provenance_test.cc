#include "release/provenance.h"

#include <gtest/gtest.h>

#include "release/release_test_support.h"

namespace mb {
namespace {

using namespace testing_release;

TEST(ProvenanceTest, OutsideARepositoryIsAFactNotAnError) {
  TempDir tmp("provenance-test");
  auto p = read_provenance(tmp.path());
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  EXPECT_FALSE(p->in_repository);
  EXPECT_EQ(p->to_json(), nlohmann::json({{"repository", false}}));
}

TEST(ProvenanceTest, CommitAndDirtiness) {
  TempDir tmp("provenance-test");
  const fs::path repo = tmp.path(), project = repo / "proj";
  git_init(repo);
  put(project / "modelbuild.yaml", "targets: {}\n");
  put(repo / ".gitignore", "*.log\n");
  const std::string head = git_commit_all(repo, "init");

  auto clean = read_provenance(project);
  ASSERT_TRUE(clean.ok()) << clean.error().to_string();
  EXPECT_TRUE(clean->in_repository);
  EXPECT_EQ(clean->commit, head);
  EXPECT_FALSE(clean->dirty);

  // The project's build outputs, its state and ignored files are not dirt.
  put(project / "build/t/x", "1");
  put(project / ".modelbuild/state/s", "1");
  put(project / "debug.log", "1");
  EXPECT_FALSE(read_provenance(project)->dirty);

  // An untracked file elsewhere, a modified tracked file: dirty.
  put(repo / "notes.txt", "1");
  auto untracked = read_provenance(project);
  EXPECT_TRUE(untracked->dirty);
  EXPECT_EQ(untracked->dirty_paths, std::vector<std::string>{"notes.txt"});
  fs::remove(repo / "notes.txt");
  put(project / "modelbuild.yaml", "targets: {x: {command: [true], outputs: []}}\n");
  auto modified = read_provenance(project);
  EXPECT_TRUE(modified->dirty);
  EXPECT_EQ(modified->dirty_paths, std::vector<std::string>{"proj/modelbuild.yaml"});
  EXPECT_EQ(modified->to_json()["dirty"], true);
}

}  // namespace
}  // namespace mb
