#pragma once
// ContentStore: the content-addressed blob store (CAS) of the cache.
//
// A blob is a read-only (0444) file named by the SHA-256 of its bytes, at
// `<cache>/cas/<first 2 hex>/<other 62 hex>`. Blobs only ever appear by
// rename(2), so a reader never sees a partial one. The store holds no state
// of its own beyond the borrowed FileSystem: it is thread-safe, and several
// processes may use one store at once.
#include <vector>

#include "base/fs.h"
#include "cache/digest.h"

namespace mb {

class ContentStore {
 public:
  ContentStore(FileSystem& fs, fs::path cache_root);

  const fs::path& dir() const { return m_dir; }
  fs::path blob_path(const Digest& digest) const;
  bool contains(const Digest& digest) const;

  // Hashes `path` and moves it into the store as a blob.
  // REQUIRES: `path` is a regular file on the cache's filesystem (normally
  // under <cache>/tmp) that nobody writes any more.
  Result<Digest> ingest(const fs::path& path);
  // The second half of ingest(), for callers that hashed the file already.
  // The file is made read-only and renamed into place. If the blob exists it
  // is replaced rather than kept: the new file was hashed just now, while an
  // old blob might have been modified in place through a hard link since it
  // was stored, and rename(2) makes the replacement free and atomic.
  // With `sync = false` the caller must sync_dir() the blob's directory
  // before relying on it (to batch the fsyncs of a many-file commit).
  Status ingest_hashed(const fs::path& path, const Digest& digest, bool sync = true);

  // Re-hashes a blob. A mismatch deletes it and returns Errc::kCorrupt;
  // a missing blob is Errc::kNotFound.
  Status verify(const Digest& digest);
  Status remove(const Digest& digest);

  // Every blob in the store. Names that are not blobs are skipped.
  Result<std::vector<Digest>> list() const;

 private:
  FileSystem& m_fs;
  fs::path m_dir;
};

}  // namespace mb
