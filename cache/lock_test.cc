// Step locks: the lookup -> lock -> lookup -> build -> commit pattern runs a
// step exactly once however many threads or processes race for its key.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "base/fs_test_support.h"
#include "cache/cache.h"
#include "cache/test_util.h"

namespace mb {
namespace {

using testing::key_of;
using testing::write_text;

// The engine's pattern. `on_build` records that the step really ran.
Result<ActionEntry> build_with_lock(Cache& cache, const Digest& key, const std::function<void()>& on_build) {
  MB_ASSIGN(auto hit, cache.lookup(key));
  if (hit) return *hit;
  MB_ASSIGN(auto lock, cache.lock_step(key));
  MB_ASSIGN(hit, cache.lookup(key));  // someone else may have built it while we waited
  if (hit) return *hit;
  on_build();
  // Widen the race window; correctness must not depend on it.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  MB_ASSIGN(StagingDir staging, cache.begin(key));
  MB_TRY(write_text(cache.fs(), staging.dir() / "out.bin", "the one true output"));
  return cache.commit(staging, "test", {});
}

void race_threads(FileSystem& fs, const fs::path& root) {
  NullReporter reporter;
  Cache cache(fs, root, reporter);
  ASSERT_TRUE(cache.init().ok());
  std::atomic<int> builds{0};
  std::vector<Digest> digests(6);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < digests.size(); ++t) {
    threads.emplace_back([&, t] {
      auto e = build_with_lock(cache, key_of("shared"), [&] { ++builds; });
      if (e.ok()) digests[t] = e->output_digest;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(builds.load(), 1);
  for (const Digest& d : digests) {
    EXPECT_FALSE(d.is_zero());
    EXPECT_EQ(d, digests[0]);
  }
}

TEST(StepLock, ThreadsRacingOnOneKeyBuildOnceInMemory) {
  MemoryFileSystem fs;
  race_threads(fs, "/c");
}

TEST(StepLock, ThreadsRacingOnOneKeyBuildOnceOnDisk) {
  testing::TempDir dir;
  auto fs = make_real_file_system();
  race_threads(*fs, dir.path() / "cache");
}

TEST(StepLock, ProcessesRacingOnOneKeyBuildOnce) {
  testing::TempDir dir;
  fs::path root = dir.path() / "cache";
  fs::path counter = dir.path() / "executions";
  {
    auto fs = make_real_file_system();
    NullReporter reporter;
    Cache cache(*fs, root, reporter);
    ASSERT_TRUE(cache.init().ok());
  }
  int gate[2];
  ASSERT_EQ(::pipe(gate), 0);
  std::vector<pid_t> children;
  for (int i = 0; i < 4; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(gate[1]);
      char c;
      (void)::read(gate[0], &c, 1);  // returns when the parent closes the pipe: all start together
      auto fs = make_real_file_system();
      NullReporter reporter;
      Cache cache(*fs, root, reporter);
      if (!cache.init().ok()) ::_exit(2);
      auto e = build_with_lock(cache, key_of("shared"), [&] {
        int fd = ::open(counter.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        (void)!::write(fd, "x", 1);
        ::close(fd);
      });
      ::_exit(e.ok() ? 0 : 1);
    }
    children.push_back(pid);
  }
  ::close(gate[0]);
  ::close(gate[1]);
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  auto fs = make_real_file_system();
  EXPECT_EQ(fs->stat(counter)->size, 1u) << "the step ran more than once (or never)";
  NullReporter reporter;
  Cache cache(*fs, root, reporter);
  ASSERT_TRUE(cache.init().ok());
  EXPECT_TRUE(cache.lookup(key_of("shared"))->has_value());
}

TEST(StepLock, UnrelatedKeysDoNotBlockEachOther) {
  MemoryFileSystem fs;
  NullReporter reporter;
  Cache cache(fs, "/c", reporter);
  ASSERT_TRUE(cache.init().ok());
  auto held = cache.lock_step(key_of("a"));
  ASSERT_TRUE(held.ok() && *held != nullptr);
  auto other = cache.try_lock_step(key_of("b"));
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*other, nullptr);
  auto same = cache.try_lock_step(key_of("a"));
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, nullptr);
  EXPECT_TRUE(fs.stat(fs::path("/c/locks") / (key_of("a").hex() + ".lock")).ok());
}

TEST(StepLock, UnrelatedKeysDoNotBlockEachOtherOnDisk) {
  testing::TempDir dir;
  auto fs = make_real_file_system();
  NullReporter reporter;
  Cache cache(*fs, dir.path(), reporter);
  ASSERT_TRUE(cache.init().ok());
  auto held = cache.lock_step(key_of("a"));
  ASSERT_TRUE(held.ok() && *held != nullptr);
  EXPECT_NE(*cache.try_lock_step(key_of("b")), nullptr);
  EXPECT_EQ(*cache.try_lock_step(key_of("a")), nullptr);
  held->reset();
  EXPECT_NE(*cache.try_lock_step(key_of("a")), nullptr);
}

}  // namespace
}  // namespace mb
