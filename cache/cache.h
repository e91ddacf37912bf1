#pragma once
// Cache: the on-disk build cache, as the engine uses it.
//
// Owns the parts that live under one root directory (layout in
// docs/cache-format.md): the content store (cas/), the action cache (ac/),
// staging directories (tmp/), per-key step locks (locks/) and the file
// digest state (state/). The engine's pattern for a step with key K:
//
//   lookup(K) -> miss -> lock_step(K) -> lookup(K) again (another process may
//   have built it meanwhile) -> begin(K) -> run the step into staging.dir()
//   -> commit() -> unlock (drop the lock) -> materialize()
//
// so two concurrent builds of K run it exactly once, and unrelated keys
// never wait for each other. Thread-safe; several processes may share one
// root. The FileSystem and Reporter are borrowed and must outlive the Cache.
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

#include "base/fs.h"
#include "base/reporter.h"
#include "cache/action_cache.h"
#include "cache/content_store.h"
#include "cache/fallback_store.h"
#include "cache/file_digests.h"
#include "cache/gc.h"
#include "cache/materialize.h"
#include "cache/staging.h"

namespace mb {

class Cache {
 public:
  // The layout version in <root>/VERSION.
  static constexpr int kFormatVersion = 1;

  Cache(FileSystem& fs, fs::path root, Reporter& reporter);

  // Creates the layout (or checks an existing one) and loads the file digest
  // state. A VERSION newer than kFormatVersion is Errc::kUnsupported, an
  // unreadable one Errc::kCorrupt; both name the VERSION file.
  Status init();
  // Persists the file digest state (only if it changed).
  Status save_state();

  FileSystem& fs() { return m_fs; }
  // True when this process may not write the cache's root (a cache mounted
  // read-only, or one it has no write permission on): hits are still served.
  bool read_only() const;
  const fs::path& root() const { return m_root; }
  Reporter& reporter() { return m_reporter; }
  ContentStore& cas() { return m_cas; }
  ActionCache& actions() { return m_ac; }
  FileDigestCache& file_digests() { return m_file_digests; }

  // The local entry for key; on a local miss, the fallback store's (which it
  // publishes locally first).
  Result<std::optional<ActionEntry>> lookup(const Digest& key);
  // Consulted on a local miss and fed after each commit (null: none). The
  // store is borrowed and must outlive the Cache.
  void set_fallback(FallbackStore* store) { m_fallback = store; }

  // Exclusive per-key lock at <root>/locks/<hex>.lock; released when the
  // returned object is destroyed or the process dies.
  Result<std::unique_ptr<FileLock>> lock_step(const Digest& key);
  // nullptr (not an error) when another holder has it.
  Result<std::unique_ptr<FileLock>> try_lock_step(const Digest& key);

  // A fresh, empty staging directory for building `key`.
  Result<StagingDir> begin(const Digest& key);
  // Stores every regular file under staging.dir() and writes the action entry
  // (the commit point), then removes the staging directory. Empty
  // directories are not recorded; a symlink or special file is an error.
  // Then the fallback store, if any, is given the entry.
  // On error nothing is visible and the staging directory is left to its
  // owner (StagingDir removes it when destroyed).
  Result<ActionEntry> commit(StagingDir& staging, std::string_view kind, nlohmann::json report);
  Status abandon(StagingDir& staging) { return staging.abandon(); }

  // Where the engine keeps a materialized, read-only view of a step output
  // for downstream steps: <root>/views/<output digest hex>. gc() removes views
  // that no remaining entry produces (their hard links would otherwise keep
  // evicted blobs on disk).
  fs::path view_dir(const Digest& output_digest) const { return m_root / "views" / output_digest.hex(); }
  // Makes sure entry's view exists and returns it. When it already holds the
  // entry's files this is stat-only and takes no lock, so a read-only cache
  // serves hits; otherwise the view is linked under a per-view lock (another
  // process may be linking it at the same moment).
  Result<fs::path> view(const ActionEntry& entry);

  Result<MaterializeResult> materialize(const ActionEntry& entry, const fs::path& dest_dir) {
    return mb::materialize(m_fs, m_cas, entry, dest_dir);
  }

  // Evicts unpinned entries, least recently used first, until the blobs the
  // remaining entries reference fit in max_bytes; then deletes unreferenced
  // blobs, views of evicted outputs and stale temp files. Pinned entries and
  // their blobs are never touched.
  Result<GcStats> gc(uint64_t max_bytes, const std::vector<Digest>& pinned_keys, const GcOptions& options = {});
  // Re-hashes every blob with `threads` threads; deletes corrupt ones.
  Result<VerifyStats> verify_all(int threads);

 private:
  fs::path lock_path(const Digest& key) const;
  Status check_version();
  uint64_t remove_stale_temps(const GcOptions& options);
  // Removes views/<digest> dirs whose digest is not in `keep`; see gc().
  uint64_t remove_unused_views(const std::set<Digest>& keep, int64_t clock_ns, bool builds_in_flight,
                               const GcOptions& options);

  FileSystem& m_fs;
  fs::path m_root;
  Reporter& m_reporter;
  ContentStore m_cas;
  ActionCache m_ac;
  FileDigestCache m_file_digests;
  FallbackStore* m_fallback = nullptr;
};

}  // namespace mb
