#pragma once
// Garbage collection and verification of a cache: see Cache::gc() and
// Cache::verify_all(). The policy is described in docs/cache-format.md
// ("Garbage collection").
#include <cstdint>

namespace mb {

struct GcOptions {
  // Unreferenced blobs changed more recently than this are kept: they may
  // belong to a commit in another process that has not written its entry yet.
  int64_t blob_grace_seconds = 3600;
  // Leftover temp dirs and files of a live process are removed only after
  // this long (and, for staging dirs, only if nobody holds the step lock).
  int64_t tmp_max_age_seconds = 24 * 3600;
};

struct GcStats {
  uint64_t entries_kept = 0;
  uint64_t entries_removed = 0;          // evicted by LRU
  uint64_t corrupt_entries_removed = 0;  // unreadable entries (worth nothing)
  uint64_t blobs_removed = 0;
  uint64_t bytes_removed = 0;
  uint64_t bytes_kept = 0;  // blobs referenced by the remaining entries
  uint64_t tmp_removed = 0;
  uint64_t views_removed = 0;  // views/<output digest> no remaining entry produces
};

struct VerifyStats {
  uint64_t blobs_checked = 0;
  uint64_t bytes_checked = 0;
  uint64_t corrupt_removed = 0;
  uint64_t unreadable = 0;
};

}  // namespace mb
