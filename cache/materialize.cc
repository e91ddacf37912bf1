// materialize(); the marker format is in docs/cache-format.md ("Materialized
// directories").
#include "cache/materialize.h"

#include <algorithm>
#include <map>
#include <optional>

namespace mb {
namespace {

constexpr char kMarkerFormat[] = "modelbuild-materialized";
constexpr int kMarkerVersion = 1;

LinkKind worse(LinkKind a, LinkKind b) { return static_cast<int>(a) >= static_cast<int>(b) ? a : b; }

bool parse_link_kind(const std::string& s, LinkKind* out) {
  for (LinkKind k : {LinkKind::kReflink, LinkKind::kHardlink, LinkKind::kCopy}) {
    if (s == link_kind_name(k)) {
      *out = k;
      return true;
    }
  }
  return false;
}

// Relative paths of everything below `dir` that is not a directory, or
// false when something other than a regular file or directory is there.
bool list_files(const FileSystem& fs, const fs::path& dir, const std::string& prefix, std::vector<std::string>* out) {
  auto names = fs.list_dir(dir);
  if (!names.ok()) return false;
  for (const std::string& name : *names) {
    if (prefix.empty() && name == kMaterializedMarker) continue;
    std::string rel = prefix.empty() ? name : prefix + "/" + name;
    auto st = fs.lstat(dir / name);
    if (!st.ok()) return false;
    if (st->is_dir) {
      if (!list_files(fs, dir / name, rel, out)) return false;
    } else if (st->is_regular) {
      out->push_back(rel);
    } else {
      return false;
    }
  }
  return true;
}

std::map<std::string, nlohmann::json> read_marker(const FileSystem& fs, const fs::path& dest_dir) {
  std::map<std::string, nlohmann::json> out;
  auto text = fs.read_file(dest_dir / std::string(kMaterializedMarker));
  if (!text.ok()) return out;
  auto json = nlohmann::json::parse(*text, nullptr, false);
  // Comparisons only: a hand-edited marker must not throw.
  if (!json.is_object() || !json.contains("format") || json["format"] != kMarkerFormat || !json.contains("version") ||
      json["version"] != kMarkerVersion || !json.contains("files") || !json["files"].is_array()) {
    return out;
  }
  for (const auto& f : json["files"]) {
    if (f.is_object() && f.contains("path") && f["path"].is_string()) out[f["path"].get<std::string>()] = f;
  }
  return out;
}

bool marker_matches(const nlohmann::json& m, const OutputFile& out, const FileStat& st, LinkKind* kind) {
  auto num = [&](const char* name) -> std::optional<int64_t> {
    auto it = m.find(name);
    if (it == m.end() || !it->is_number_integer()) return std::nullopt;
    return it->get<int64_t>();
  };
  auto digest = m.find("digest");
  auto link = m.find("link");
  if (digest == m.end() || !digest->is_string() || *digest != out.digest.hex()) return false;
  if (link == m.end() || !link->is_string() || !parse_link_kind(link->get<std::string>(), kind)) return false;
  return num("size") == static_cast<int64_t>(out.size) && num("dev") == static_cast<int64_t>(st.dev) &&
         num("ino") == static_cast<int64_t>(st.ino) && num("mtime_ns") == st.mtime_ns && num("ctime_ns") == st.ctime_ns;
}

}  // namespace

bool is_materialized(const FileSystem& fs, const ContentStore& cas, const ActionEntry& entry, const fs::path& dest_dir,
                     LinkKind* worst) {
  auto root = fs.stat(dest_dir);
  if (!root.ok() || !root->is_dir) return false;
  std::vector<std::string> found;
  if (!list_files(fs, dest_dir, "", &found)) return false;
  std::sort(found.begin(), found.end());
  if (found.size() != entry.outputs.size()) return false;
  for (size_t i = 0; i < found.size(); ++i) {
    if (found[i] != entry.outputs[i].path) return false;  // outputs are sorted by path
  }
  std::map<std::string, nlohmann::json> marker;
  bool marker_read = false;
  LinkKind worst_seen = LinkKind::kReflink;
  for (const OutputFile& out : entry.outputs) {
    auto st = fs.lstat(dest_dir / out.path);
    if (!st.ok() || !st->is_regular || st->size != out.size) return false;
    if (out.executable && (st->mode & 0111) == 0) return false;
    auto blob = fs.stat(cas.blob_path(out.digest));
    if (blob.ok() && blob->dev == st->dev && blob->ino == st->ino) {
      // The blob itself: its ctime moves whenever anyone links it, so the
      // inode is the identity to compare, not the fingerprint.
      worst_seen = worse(worst_seen, LinkKind::kHardlink);
      continue;
    }
    if (!marker_read) {
      marker = read_marker(fs, dest_dir);
      marker_read = true;
    }
    auto m = marker.find(out.path);
    LinkKind kind;
    if (m == marker.end() || !marker_matches(m->second, out, *st, &kind)) return false;
    worst_seen = worse(worst_seen, kind);
  }
  if (worst != nullptr) *worst = worst_seen;
  return true;
}

Result<MaterializeResult> materialize(FileSystem& fs, const ContentStore& cas, const ActionEntry& entry,
                                      const fs::path& dest_dir) {
  MaterializeResult result;
  result.files = entry.outputs.size();
  for (const OutputFile& out : entry.outputs) result.bytes += out.size;
  if (is_materialized(fs, cas, entry, dest_dir, &result.link_kind)) {
    result.noop = true;
    return result;
  }
  if (dest_dir.has_parent_path()) MB_TRY(fs.create_dirs(dest_dir.parent_path()));
  fs::path tmp = temp_path_for(dest_dir);
  auto build = [&]() -> Status {
    MB_TRY(fs.create_dirs(tmp));
    nlohmann::json files = nlohmann::json::array();
    for (const OutputFile& out : entry.outputs) {
      fs::path blob = cas.blob_path(out.digest);
      fs::path target = tmp / out.path;
      MB_TRY(fs.create_dirs(target.parent_path()));
      LinkKind kind;
      if (out.executable) {
        // A hard link would share the blob's 0444 mode: give it its own inode.
        if (fs.reflink(blob, target).ok()) {
          kind = LinkKind::kReflink;
        } else {
          MB_TRY(fs.copy_file(blob, target));
          kind = LinkKind::kCopy;
        }
        MB_TRY(fs.set_mode(target, 0555));
      } else {
        MB_ASSIGN(kind, link_or_copy(fs, blob, target));
        if (kind != LinkKind::kHardlink) MB_TRY(fs.set_mode(target, 0444));
      }
      MB_ASSIGN(FileStat st, fs.stat(target));
      if (st.size != out.size) {
        return make_error(Errc::kCorrupt, blob.string(), "blob is {} bytes, the cache entry says {}", st.size,
                          out.size);
      }
      result.link_kind = worse(result.link_kind, kind);
      files.push_back({{"path", out.path},
                       {"digest", out.digest.hex()},
                       {"size", out.size},
                       {"link", link_kind_name(kind)},
                       {"dev", st.dev},
                       {"ino", st.ino},
                       {"mtime_ns", st.mtime_ns},
                       {"ctime_ns", st.ctime_ns}});
    }
    nlohmann::json marker = {{"format", kMarkerFormat},
                             {"version", kMarkerVersion},
                             {"key", entry.key.hex()},
                             {"output_digest", entry.output_digest.hex()},
                             {"files", files}};
    return write_file_atomic(fs, tmp / std::string(kMaterializedMarker), std::string_view(marker.dump(1) + "\n"));
  };
  Status built = build();
  if (!built.ok()) {
    (void)fs.remove_all(tmp);
    return built.error();
  }
  // Swap: move the old directory aside, the new one in, then delete the old.
  // Between the two renames dest_dir is briefly absent, never half-filled.
  fs::path old;
  if (fs.lstat(dest_dir).ok()) {
    old = temp_path_for(dest_dir);
    Status st = fs.rename(dest_dir, old);
    if (!st.ok()) {
      (void)fs.remove_all(tmp);
      return st.error();
    }
  }
  Status st = fs.rename(tmp, dest_dir);
  if (!st.ok()) {
    if (!old.empty()) (void)fs.rename(old, dest_dir);
    (void)fs.remove_all(tmp);
    return st.error();
  }
  if (!old.empty()) MB_TRY(fs.remove_all(old));
  fs::path parent = dest_dir.parent_path();
  MB_TRY(fs.sync_dir(parent.empty() ? fs::path(".") : parent));
  return result;
}

}  // namespace mb
