#pragma once
// Parallel loops for coarse-grained work: hashing files, verifying blobs,
// fusing chunks of rows. Each call starts its threads and joins them before
// it returns (a few microseconds next to work that takes milliseconds); the
// inference engine's per-token loops use inference/thread_pool.h instead.
//
// No exception escapes a worker: one thrown by `fn` (bad_alloc, a throwing
// library call) becomes that index's Errc::kInternal error, so a bug in a
// step fails the step instead of calling std::terminate.
#include <cstdint>
#include <functional>

#include "base/result.h"

namespace mb {

// Hardware threads of this machine (at least 1).
int core_count();
// `threads` when positive, otherwise core_count().
int resolve_threads(int threads);

// Runs fn(i) for every i in [0, n) on up to `threads` threads (0 = all cores;
// the calling thread is one of them). Indices are claimed in ascending order
// from a shared counter, so which thread runs an index varies: fn must not
// depend on it. After a failure no new index is started. Returns the error of
// the lowest failing index.
Status parallel_for(int64_t n, int threads, const std::function<Status(int64_t index)>& fn);

// Calls fn and turns anything it throws into an Errc::kInternal error whose
// location is `where`. For code that runs where no caller can catch.
Status catch_all(const std::string& where, const std::function<Status()>& fn);

}  // namespace mb
