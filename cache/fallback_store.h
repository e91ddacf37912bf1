#pragma once
// FallbackStore: a second, slower cache behind the local one (the remote
// cache, cache/remote_cache.h), seen by Cache only through this interface so
// the engine never learns about HTTP.
//
// Cache::lookup() asks it only after a local miss, so a local hit never
// touches it; Cache::commit() feeds it after the local commit point.
// Implementations must be thread-safe (steps commit from worker threads).
#include <optional>

#include "base/result.h"
#include "cache/action_cache.h"
#include "cache/digest.h"

namespace mb {

class Cache;

class FallbackStore {
 public:
  virtual ~FallbackStore() = default;
  // Fetches key's entry and every blob it names into `cache` and publishes
  // them locally (entry last); nullopt on a miss. An error only when the
  // store must not be skipped (--remote-required).
  virtual Result<std::optional<ActionEntry>> fetch(Cache& cache, const Digest& key) = 0;
  // Stores a locally committed entry and its blobs. An error only when the
  // store must not be skipped.
  virtual Status publish(Cache& cache, const ActionEntry& entry) = 0;
};

}  // namespace mb
