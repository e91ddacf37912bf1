#include "cache/content_store.h"

namespace mb {

ContentStore::ContentStore(FileSystem& fs, fs::path cache_root) : m_fs(fs), m_dir(std::move(cache_root) / "cas") {}

fs::path ContentStore::blob_path(const Digest& digest) const {
  std::string hex = digest.hex();
  return m_dir / hex.substr(0, 2) / hex.substr(2);
}

bool ContentStore::contains(const Digest& digest) const {
  auto st = m_fs.stat(blob_path(digest));
  return st.ok() && st->is_regular;
}

Result<Digest> ContentStore::ingest(const fs::path& path) {
  MB_ASSIGN(FileStat st, m_fs.lstat(path));
  if (!st.is_regular) return make_error(Errc::kInvalidInput, path.string(), "only regular files can be stored");
  MB_ASSIGN(Digest digest, digest_file(m_fs, path));
  MB_TRY(ingest_hashed(path, digest));
  return digest;
}

Status ContentStore::ingest_hashed(const fs::path& path, const Digest& digest, bool sync) {
  fs::path blob = blob_path(digest);
  fs::path source = path;
  MB_ASSIGN(FileStat st, m_fs.lstat(path));
  if (st.nlink > 1) {
    // The file shares its inode with another name (a step that hard-linked
    // its input into its output). chmod would change that other file, and
    // a later write through it would corrupt the blob: store a private copy.
    source = temp_path_for(path);
    MB_TRY(m_fs.copy_file(path, source));
    MB_TRY(m_fs.remove(path));
  }
  MB_TRY(m_fs.set_mode(source, 0444));
  MB_TRY(m_fs.create_dirs(blob.parent_path()));
  MB_TRY(m_fs.rename(source, blob));
  return sync ? m_fs.sync_dir(blob.parent_path()) : Status();
}

Status ContentStore::verify(const Digest& digest) {
  fs::path blob = blob_path(digest);
  MB_ASSIGN(Digest actual, digest_file(m_fs, blob));
  if (actual == digest) return {};
  MB_TRY(m_fs.remove(blob));
  return make_error(Errc::kCorrupt, blob.string(), "blob content hashes to {}, deleted it", actual.short_hex());
}

Status ContentStore::remove(const Digest& digest) { return m_fs.remove(blob_path(digest)); }

Result<std::vector<Digest>> ContentStore::list() const { return list_sharded_digests(m_fs, m_dir, false); }

}  // namespace mb
