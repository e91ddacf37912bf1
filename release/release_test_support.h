#pragma once
// Helpers for the release module's tests: files and git repositories in a
// temporary directory (the `git` CLI makes the repositories, so the code
// under test, which uses libgit2, is checked against real git).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/subprocess.h"
#include "base/temp_dir.h"

namespace mb::testing_release {

inline void put(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

inline std::string get(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs git in `dir`; fails the test on a non-zero exit. Returns stdout.
inline std::string git(const fs::path& dir, std::vector<std::string> args) {
  args.insert(args.begin(), "git");
  SubprocessOptions o;
  o.cwd = dir;
  o.env["GIT_CONFIG_NOSYSTEM"] = "1";
  auto r = run_subprocess(args, o);
  EXPECT_TRUE(r.ok() && r->exit_code == 0) << (r.ok() ? r->output : r.error().to_string());
  return r.ok() ? r->stdout_text : "";
}

// A repository with a committer identity, so commits work anywhere.
inline void git_init(const fs::path& dir) {
  fs::create_directories(dir);
  git(dir, {"init", "-q", "-b", "main", "."});
  git(dir, {"config", "user.name", "Release Test"});
  git(dir, {"config", "user.email", "release-test@example.invalid"});
  git(dir, {"config", "commit.gpgsign", "false"});
}

inline std::string git_commit_all(const fs::path& dir, const std::string& message) {
  git(dir, {"add", "-A"});
  git(dir, {"commit", "-q", "-m", message});
  std::string head = git(dir, {"rev-parse", "HEAD"});
  while (!head.empty() && head.back() == '\n') head.pop_back();
  return head;
}

}  // namespace mb::testing_release
