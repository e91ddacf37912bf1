#include "base/parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <new>
#include <stdexcept>
#include <vector>

namespace mb {
namespace {

TEST(ParallelFor, CoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 8}) {
    std::vector<std::atomic<int>> hits(101);
    ASSERT_TRUE(parallel_for(101, threads, [&](int64_t i) -> Status {
                  hits[static_cast<size_t>(i)]++;
                  return {};
                }).ok());
    for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  }
}

TEST(ParallelFor, ReturnsTheLowestFailure) {
  Status st = parallel_for(50, 4, [](int64_t i) -> Status {
    if (i == 7 || i == 9) return make_error(Errc::kCorrupt, std::to_string(i), "bad");
    return {};
  });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().where, "7");
}

// A throw on a worker thread would call std::terminate; it must become the
// index's error instead, on the caller's thread and on the others.
TEST(ParallelFor, AnExceptionOnAWorkerIsAnError) {
  for (int threads : {1, 3}) {
    Status st = parallel_for(20, threads, [](int64_t i) -> Status {
      if (i == 5) throw std::runtime_error("boom");
      if (i == 6) throw std::bad_alloc();
      return {};
    });
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, Errc::kInternal);
    EXPECT_NE(st.error().message.find("boom"), std::string::npos) << st.error().message;
  }
}

TEST(CatchAll, NamesWhereAndWhat) {
  Status st = catch_all("step x", []() -> Status { throw std::out_of_range("json key"); });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().where, "step x");
  EXPECT_NE(st.error().message.find("json key"), std::string::npos);
  EXPECT_TRUE(catch_all("y", [] { return Status(); }).ok());
}

TEST(CoreCount, IsPositive) {
  EXPECT_GE(core_count(), 1);
  EXPECT_EQ(resolve_threads(3), 3);
  EXPECT_EQ(resolve_threads(0), core_count());
}

}  // namespace
}  // namespace mb
