#pragma once
// ActionCache: what a build step produced, by action key.
//
// One JSON file per key at `<cache>/ac/<first 2 hex>/<64 hex>` lists the
// step's output files (relative path, blob digest, size, executable bit),
// their tree digest and the step's report. Entries are written atomically
// (write_file_atomic), and writing the entry is the commit point of a step:
// the blobs it names are in the ContentStore before it appears.
//
// lookup() never returns a wrong artifact and never fails on bad data: a
// corrupt entry, one from a newer format, or one whose blobs are missing or
// look modified is a miss plus a warning. The checks are stat-only unless a
// blob's mtime or size differs from the entry, in which case the blob is
// re-hashed (and deleted when it is corrupt). A hit touches the entry: its
// mtime is the LRU clock gc() evicts by.
//
// Stateless apart from the borrowed FileSystem, ContentStore and Reporter:
// thread-safe, and safe to share between processes.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/reporter.h"
#include "cache/content_store.h"
#include "cache/digest.h"
#include "cache/tree_digest.h"

namespace mb {

struct OutputFile {
  std::string path;  // relative to the step's output directory, '/'-separated
  Digest digest;     // the blob
  uint64_t size = 0;
  bool executable = false;
  // The blob's mtime when the entry was written: a cheap tamper check, since
  // writing through a hard link to the blob changes it.
  int64_t blob_mtime_ns = 0;
};

struct ActionEntry {
  Digest key;
  std::string kind;
  std::vector<OutputFile> outputs;  // sorted by path
  Digest output_digest;             // tree_digest(outputs)
  nlohmann::json report = nlohmann::json::object();
};

// The tree entries of an action entry's outputs, for tree_digest().
std::vector<TreeEntry> tree_entries_of(const std::vector<OutputFile>& outputs);

// JSON (de)serialization of an entry; docs/cache-format.md ("Action cache").
nlohmann::json entry_to_json(const ActionEntry& entry);
// Errc::kUnsupported for a newer format, Errc::kCorrupt for anything invalid.
Result<ActionEntry> entry_from_json(const nlohmann::json& json, const std::string& where);

class ActionCache {
 public:
  static constexpr int kEntryVersion = 1;

  ActionCache(FileSystem& fs, fs::path cache_root, ContentStore& cas, Reporter& reporter);

  const fs::path& dir() const { return m_dir; }
  fs::path entry_path(const Digest& key) const;

  // A validated hit, std::nullopt on a miss. Errors only when the operating
  // system refuses something other than reading the entry (never for bad data).
  Result<std::optional<ActionEntry>> lookup(const Digest& key);
  // Reads and parses an entry without checking its blobs (for gc).
  Result<ActionEntry> read(const Digest& key) const;
  // Writes the entry atomically, replacing any previous one for its key.
  Status store(const ActionEntry& entry);
  Status remove(const Digest& key);
  // Keys of every entry file (valid or not).
  Result<std::vector<Digest>> list() const;

 private:
  // Why a blob cannot back `out` as recorded, or "" when it can. May re-hash
  // the blob, and refreshes out.blob_mtime_ns when the content checks out.
  std::string check_blob(OutputFile& out, bool* refreshed);

  FileSystem& m_fs;
  fs::path m_dir;
  ContentStore& m_cas;
  Reporter& m_reporter;
};

}  // namespace mb
