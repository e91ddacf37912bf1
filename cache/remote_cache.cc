#include "cache/remote_cache.h"

#include <fmt/format.h>

#include "base/parallel.h"
#include "cache/cache.h"
#include "cache/tree_digest.h"

namespace mb {
namespace {

// The entry as sent to the remote: blob_mtime_ns is this machine's
// bookkeeping (docs/cache-format.md), so it is zeroed.
std::string remote_entry_text(const ActionEntry& entry) {
  ActionEntry shared = entry;
  for (OutputFile& o : shared.outputs) o.blob_mtime_ns = 0;
  return entry_to_json(shared).dump() + "\n";
}

std::string trim_slash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

}  // namespace

RemoteCache::RemoteCache(RemoteOptions options, Reporter& reporter)
    : m_options(std::move(options)), m_reporter(reporter), m_http(m_options.http) {
  m_options.url = trim_slash(m_options.url);
}

std::string RemoteCache::url_of(const char* kind, const Digest& digest) const {
  return fmt::format("{}/{}/{}", m_options.url, kind, digest.hex());
}

RemoteStats RemoteCache::stats() const {
  std::lock_guard<std::mutex> lock(m_mu);
  return m_stats;
}

Status RemoteCache::fail(const Error& error) {
  if (m_options.required) {
    return make_error(Errc::kIo, error.where, "remote cache {} failed (--remote-required): {}",
                      redact_url(m_options.url), error.message);
  }
  if (!m_warned.exchange(true)) {
    m_reporter.warn(
        fmt::format("remote cache {}: {}: {}; building locally (further remote problems this build are "
                    "not reported)",
                    redact_url(m_options.url), error.where, error.message));
  }
  return {};
}

Result<std::optional<ActionEntry>> RemoteCache::fetch(Cache& cache, const Digest& key) {
  if (m_down) return std::optional<ActionEntry>();
  {
    std::lock_guard<std::mutex> lock(m_mu);
    if (m_missed.count(key) != 0) return std::optional<ActionEntry>();
  }
  auto entry = try_fetch(cache, key);
  if (entry.ok()) {
    std::lock_guard<std::mutex> lock(m_mu);
    if (*entry) {
      ++m_stats.hits;
    } else {
      ++m_stats.misses;
      m_missed.insert(key);
    }
    return entry;
  }
  if (entry.error().code != Errc::kCorrupt) {
    m_down = true;
  } else {
    std::lock_guard<std::mutex> lock(m_mu);
    m_suspect.insert(key);
  }
  MB_TRY(fail(entry.error()));
  std::lock_guard<std::mutex> lock(m_mu);
  m_missed.insert(key);
  return std::optional<ActionEntry>();
}

Result<std::optional<ActionEntry>> RemoteCache::try_fetch(Cache& cache, const Digest& key) {
  const std::string url = url_of("ac", key);
  std::string text;
  auto got = m_http.get(
      url,
      [&](std::span<const std::byte> chunk) {
        text.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
        return text.size() < (64u << 20);  // an entry is small; a huge one is hostile
      },
      [&] {
        text.clear();
        return Status();
      });
  MB_TRY(got.status());
  if (got->status == 404) return std::optional<ActionEntry>();
  if (got->status != 200) return make_error(Errc::kIo, redact_url(url), "HTTP {}", got->status);
  nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  MB_ASSIGN(ActionEntry entry, entry_from_json(json, redact_url(url)));
  if (entry.key != key || entry.output_digest != tree_digest(tree_entries_of(entry.outputs))) {
    return make_error(Errc::kCorrupt, redact_url(url), "entry does not match its key or its outputs");
  }
  m_reporter.report({EventKind::kMessage,
                     Level::kDebug,
                     "",
                     "remote cache hit",
                     {{"remote", "hit"}, {"key", key.hex()}, {"files", entry.outputs.size()}}});
  const int64_t n = static_cast<int64_t>(entry.outputs.size());
  MB_TRY(parallel_for(n, m_options.transfers,
                      [&](int64_t i) { return download_blob(cache, entry.outputs[static_cast<size_t>(i)]); }));
  for (OutputFile& o : entry.outputs) {
    MB_ASSIGN(FileStat blob, cache.fs().stat(cache.cas().blob_path(o.digest)));
    o.blob_mtime_ns = blob.mtime_ns;
  }
  MB_TRY(cache.actions().store(entry));  // published last: the local commit point
  return std::optional<ActionEntry>(std::move(entry));
}

Status RemoteCache::download_blob(Cache& cache, const OutputFile& out) {
  if (cache.cas().contains(out.digest)) return {};
  const std::string url = url_of("cas", out.digest);
  MB_ASSIGN(StagingDir staging, cache.begin(out.digest));
  const fs::path tmp = staging.dir() / "blob";
  MB_ASSIGN(auto file, cache.fs().open_for_write(tmp));
  auto hasher = std::make_unique<Hasher>();
  uint64_t done = 0;
  Status write_error;
  auto got = m_http.get(
      url,
      [&](std::span<const std::byte> chunk) {
        hasher->update(chunk);
        done += chunk.size();
        if (done > out.size) return false;  // longer than the entry says: not the blob
        write_error = file->append(chunk);
        m_reporter.progress("remote download", done, out.size, "bytes");
        return write_error.ok();
      },
      [&]() -> Status {
        hasher = std::make_unique<Hasher>();
        done = 0;
        MB_ASSIGN(file, cache.fs().open_for_write(tmp));
        return {};
      });
  MB_TRY(write_error);
  if (!got.ok() && done > out.size) {
    std::lock_guard<std::mutex> lock(m_mu);
    m_corrupt.insert(out.digest);
    return make_error(Errc::kCorrupt, redact_url(url), "longer than the {} bytes its entry says", out.size);
  }
  MB_TRY(got.status());
  if (got->status != 200) {
    return make_error(got->status == 404 ? Errc::kCorrupt : Errc::kIo, redact_url(url), "HTTP {}", got->status);
  }
  MB_TRY(file->sync());
  MB_TRY(file->close());
  if (done != out.size || hasher->finish() != out.digest) {
    std::lock_guard<std::mutex> lock(m_mu);
    m_corrupt.insert(out.digest);
    return make_error(Errc::kCorrupt, redact_url(url), "blob does not match its digest ({} of {} bytes)", done,
                      out.size);
  }
  MB_TRY(cache.cas().ingest_hashed(tmp, out.digest));
  std::lock_guard<std::mutex> lock(m_mu);
  m_stats.downloaded_bytes += out.size;
  return {};
}

Status RemoteCache::publish(Cache& cache, const ActionEntry& entry) {
  if (!m_options.upload || m_down) return {};
  Status st = try_publish(cache, entry);
  if (st.ok()) return {};
  m_down = true;
  return fail(st.error());
}

Status RemoteCache::try_publish(Cache& cache, const ActionEntry& entry) {
  const std::string url = url_of("ac", entry.key);
  MB_ASSIGN(HttpResponse head, m_http.head(url));
  const bool replace = names_corrupt_blob(entry);
  if (head.status == 200 && !replace) {
    std::lock_guard<std::mutex> lock(m_mu);
    ++m_stats.uploads_skipped;
    return {};
  }
  const int64_t n = static_cast<int64_t>(entry.outputs.size());
  MB_TRY(parallel_for(n, m_options.transfers,
                      [&](int64_t i) { return upload_blob(cache, entry.outputs[static_cast<size_t>(i)], replace); }));
  // The entry goes last, so another machine never sees one whose blobs are missing.
  MB_ASSIGN(HttpResponse put, m_http.put_bytes(url, remote_entry_text(entry)));
  if (put.status < 200 || put.status >= 300) return make_error(Errc::kIo, redact_url(url), "PUT: HTTP {}", put.status);
  m_reporter.report({EventKind::kMessage,
                     Level::kDebug,
                     "",
                     "remote cache upload",
                     {{"remote", "uploaded"}, {"key", entry.key.hex()}, {"files", entry.outputs.size()}}});
  return {};
}

bool RemoteCache::names_corrupt_blob(const ActionEntry& entry) const {
  std::lock_guard<std::mutex> lock(m_mu);
  if (m_suspect.count(entry.key) != 0) return true;
  for (const OutputFile& o : entry.outputs)
    if (m_corrupt.count(o.digest) != 0) return true;
  return false;
}

Status RemoteCache::upload_blob(Cache& cache, const OutputFile& out, bool replace) {
  const std::string url = url_of("cas", out.digest);
  MB_ASSIGN(HttpResponse head, m_http.head(url));
  if (head.status == 200 && !replace) {
    std::lock_guard<std::mutex> lock(m_mu);
    ++m_stats.uploads_skipped;
    return {};
  }
  MB_ASSIGN(HttpResponse put, m_http.put_file(url, cache.cas().blob_path(out.digest), out.size, [&](uint64_t done) {
    m_reporter.progress("remote upload", done, out.size, "bytes");
  }));
  if (put.status < 200 || put.status >= 300) return make_error(Errc::kIo, redact_url(url), "PUT: HTTP {}", put.status);
  std::lock_guard<std::mutex> lock(m_mu);
  m_stats.uploaded_bytes += out.size;
  return {};
}

}  // namespace mb
