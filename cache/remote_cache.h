#pragma once
// RemoteCache: a shared cache over Bazel's HTTP caching protocol
// (docs/remote-cache.md): GET/PUT/HEAD of URL/cas/<sha256> for blobs and
// URL/ac/<sha256> for action entries (modelbuild's own JSON entry format,
// docs/cache-format.md). It is the local Cache's FallbackStore.
//
// A download streams into a staging file under <cache>/tmp while it is
// hashed, and only a blob whose SHA-256 and size match is moved into the
// local store; the entry is published last, so a killed download publishes
// nothing. An upload first asks (HEAD) whether the server has the object.
// The blobs of one entry move on a few threads at once.
//
// Failures never cost correctness: an unreachable, slow, refusing or
// corrupt remote is a miss (or a skipped upload) plus one warning per
// RemoteCache (one per build), unless `required`, when it is the build's
// error. Thread-safe.
#include <atomic>
#include <mutex>
#include <set>
#include <string>

#include "base/reporter.h"
#include "cache/fallback_store.h"
#include "cache/http_client.h"

namespace mb {

struct RemoteOptions {
  std::string url;     // base URL, e.g. http://cache.internal:8080/modelbuild
  bool upload = true;  // false: read-only (--no-remote-upload)
  bool required = false;
  int transfers = 4;  // blobs moved at once
  HttpOptions http;
};

struct RemoteStats {
  uint64_t hits = 0, misses = 0, downloaded_bytes = 0, uploaded_bytes = 0, uploads_skipped = 0;
};

class RemoteCache : public FallbackStore {
 public:
  RemoteCache(RemoteOptions options, Reporter& reporter);

  Result<std::optional<ActionEntry>> fetch(Cache& cache, const Digest& key) override;
  Status publish(Cache& cache, const ActionEntry& entry) override;
  RemoteStats stats() const;

 private:
  std::string url_of(const char* kind, const Digest& digest) const;
  Result<std::optional<ActionEntry>> try_fetch(Cache& cache, const Digest& key);
  Status try_publish(Cache& cache, const ActionEntry& entry);
  Status download_blob(Cache& cache, const OutputFile& out);
  // `replace`: upload even if the server has it (its copy was served corrupt).
  Status upload_blob(Cache& cache, const OutputFile& out, bool replace);
  // True when the server served one of entry's blobs corrupt this build: the
  // good local copy replaces it even though the server "has" the object.
  bool names_corrupt_blob(const ActionEntry& entry) const;
  // A failure: an error when required, else one warning per build.
  Status fail(const Error& error);

  RemoteOptions m_options;
  Reporter& m_reporter;
  HttpClient m_http;
  std::atomic<bool> m_warned{false};
  std::atomic<bool> m_down{false};  // unreachable: stop asking for this build
  mutable std::mutex m_mu;
  RemoteStats m_stats;
  std::set<Digest> m_missed;   // ac misses asked this build (the builder looks twice)
  std::set<Digest> m_corrupt;  // blobs the server served wrong: re-uploaded when built here
  std::set<Digest> m_suspect;  // keys whose entry or blobs were served wrong: all re-uploaded
};

}  // namespace mb
