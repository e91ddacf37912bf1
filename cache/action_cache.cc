// ActionCache; the entry format is in docs/cache-format.md ("Action cache").
#include "cache/action_cache.h"

#include <algorithm>
#include <set>

namespace mb {
namespace {

constexpr char kEntryFormat[] = "modelbuild-action";

Error corrupt(const std::string& where, std::string why) { return Error{Errc::kCorrupt, where, std::move(why)}; }

Result<Digest> hex_field(const nlohmann::json& obj, const char* name, const std::string& where) {
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_string()) return corrupt(where, fmt::format("'{}' is missing or not a string", name));
  auto d = Digest::from_hex(it->get_ref<const std::string&>());
  if (!d.ok()) return corrupt(where, fmt::format("'{}': {}", name, d.error().message));
  return d;
}

}  // namespace

std::vector<TreeEntry> tree_entries_of(const std::vector<OutputFile>& outputs) {
  std::vector<TreeEntry> out;
  out.reserve(outputs.size());
  for (const OutputFile& o : outputs) out.push_back(TreeEntry{o.path, o.digest, o.size});
  return out;
}

nlohmann::json entry_to_json(const ActionEntry& entry) {
  nlohmann::json outputs = nlohmann::json::array();
  for (const OutputFile& o : entry.outputs) {
    outputs.push_back({{"path", o.path},
                       {"digest", o.digest.hex()},
                       {"size", o.size},
                       {"executable", o.executable},
                       {"blob_mtime_ns", o.blob_mtime_ns}});
  }
  return {{"format", kEntryFormat},
          {"version", ActionCache::kEntryVersion},
          {"digest_function", "sha256"},
          {"key", entry.key.hex()},
          {"kind", entry.kind},
          {"outputs", outputs},
          {"output_digest", entry.output_digest.hex()},
          {"report", entry.report}};
}

Result<ActionEntry> entry_from_json(const nlohmann::json& json, const std::string& where) {
  if (!json.is_object()) return corrupt(where, "not a JSON object");
  auto format = json.find("format");
  if (format == json.end() || *format != kEntryFormat) return corrupt(where, "not a modelbuild action entry");
  auto version = json.find("version");
  if (version == json.end() || !version->is_number_integer()) return corrupt(where, "'version' is missing");
  if (version->get<int64_t>() > ActionCache::kEntryVersion) {
    return make_error(Errc::kUnsupported, where, "entry version {} is newer than this modelbuild reads ({})",
                      version->get<int64_t>(), ActionCache::kEntryVersion);
  }
  if (version->get<int64_t>() != ActionCache::kEntryVersion) return corrupt(where, "unknown entry version");
  auto function = json.find("digest_function");
  if (function == json.end() || *function != "sha256") {
    return make_error(Errc::kUnsupported, where, "digest function is not sha256");
  }
  ActionEntry e;
  MB_ASSIGN(e.key, hex_field(json, "key", where));
  MB_ASSIGN(e.output_digest, hex_field(json, "output_digest", where));
  auto kind = json.find("kind");
  if (kind == json.end() || !kind->is_string()) return corrupt(where, "'kind' is missing");
  e.kind = kind->get<std::string>();
  auto report = json.find("report");
  if (report != json.end()) e.report = *report;
  auto outputs = json.find("outputs");
  if (outputs == json.end() || !outputs->is_array()) return corrupt(where, "'outputs' is missing");
  std::set<std::string> seen;
  for (const auto& o : *outputs) {
    if (!o.is_object()) return corrupt(where, "an output is not an object");
    OutputFile f;
    auto path = o.find("path");
    if (path == o.end() || !path->is_string() || !is_valid_relative_path(path->get_ref<const std::string&>())) {
      return corrupt(where, "an output path is missing or not a safe relative path");
    }
    f.path = path->get<std::string>();
    if (!seen.insert(f.path).second) return corrupt(where, fmt::format("output '{}' is listed twice", f.path));
    MB_ASSIGN(f.digest, hex_field(o, "digest", where));
    auto size = o.find("size");
    auto exec = o.find("executable");
    auto mtime = o.find("blob_mtime_ns");
    if (size == o.end() || !size->is_number_unsigned() || exec == o.end() || !exec->is_boolean() || mtime == o.end() ||
        !mtime->is_number_integer()) {
      return corrupt(where, fmt::format("output '{}' lacks size, executable or blob_mtime_ns", f.path));
    }
    f.size = size->get<uint64_t>();
    f.executable = exec->get<bool>();
    f.blob_mtime_ns = mtime->get<int64_t>();
    e.outputs.push_back(std::move(f));
  }
  std::sort(e.outputs.begin(), e.outputs.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  if (tree_digest(tree_entries_of(e.outputs)) != e.output_digest) {
    return corrupt(where, "output_digest does not match the outputs");
  }
  return e;
}

ActionCache::ActionCache(FileSystem& fs, fs::path cache_root, ContentStore& cas, Reporter& reporter)
    : m_fs(fs), m_dir(std::move(cache_root) / "ac"), m_cas(cas), m_reporter(reporter) {}

fs::path ActionCache::entry_path(const Digest& key) const {
  std::string hex = key.hex();
  return m_dir / hex.substr(0, 2) / hex;
}

Result<ActionEntry> ActionCache::read(const Digest& key) const {
  fs::path path = entry_path(key);
  MB_ASSIGN(std::string text, m_fs.read_file(path));
  auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return corrupt(path.string(), "not valid JSON");
  MB_ASSIGN(ActionEntry e, entry_from_json(json, path.string()));
  if (e.key != key) return corrupt(path.string(), "entry is for another key");
  return e;
}

std::string ActionCache::check_blob(OutputFile& out, bool* refreshed) {
  auto st = m_fs.stat(m_cas.blob_path(out.digest));
  if (!st.ok()) return fmt::format("the blob of '{}' is missing", out.path);
  if (st->size == out.size && st->mtime_ns == out.blob_mtime_ns) return "";
  // Changed size or timestamp: something wrote to it, or it was replaced by
  // an identical copy. Only its content can tell.
  m_reporter.debug(
      fmt::format("re-hashing blob {} of '{}': its timestamp or size changed", out.digest.short_hex(), out.path));
  Status ok = m_cas.verify(out.digest);
  if (!ok.ok()) return fmt::format("the blob of '{}' failed verification ({})", out.path, ok.error().message);
  if (st->size != out.size) return fmt::format("the blob of '{}' has another size than recorded", out.path);
  out.blob_mtime_ns = st->mtime_ns;
  *refreshed = true;
  return "";
}

Result<std::optional<ActionEntry>> ActionCache::lookup(const Digest& key) {
  fs::path path = entry_path(key);
  auto entry = read(key);
  if (!entry.ok()) {
    if (entry.error().code != Errc::kNotFound) {
      m_reporter.warn(fmt::format("ignoring cache entry {}: {}", key.short_hex(), entry.error().to_string()));
    }
    return std::optional<ActionEntry>();
  }
  bool refreshed = false;
  for (OutputFile& out : entry->outputs) {
    std::string why = check_blob(out, &refreshed);
    if (!why.empty()) {
      m_reporter.warn(fmt::format("ignoring cache entry {} ({}): {}", key.short_hex(), entry->kind, why));
      return std::optional<ActionEntry>();
    }
  }
  // Best effort: a read-only cache still serves hits, it just stops aging.
  if (refreshed) {
    (void)store(*entry);
  } else {
    (void)m_fs.touch(path);
  }
  return std::optional<ActionEntry>(std::move(entry).value());
}

Status ActionCache::store(const ActionEntry& entry) {
  fs::path path = entry_path(entry.key);
  MB_TRY(m_fs.create_dirs(path.parent_path()));
  std::string text = entry_to_json(entry).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  return write_file_atomic(m_fs, path, std::string_view(text));
}

Status ActionCache::remove(const Digest& key) { return m_fs.remove(entry_path(key)); }

Result<std::vector<Digest>> ActionCache::list() const { return list_sharded_digests(m_fs, m_dir, true); }

}  // namespace mb
