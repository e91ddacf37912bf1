#include "release/manifest.h"

#include "cache/tree_digest.h"

namespace mb {

std::string manifest_text(const nlohmann::json& manifest) { return manifest.dump(2) + "\n"; }

Result<nlohmann::json> parse_manifest(std::string_view text, const std::string& where) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return make_error(Errc::kCorrupt, where, "not valid JSON: the manifest is corrupt");
  if (!j.contains("format_version") || !j["format_version"].is_number_integer())
    return make_error(Errc::kCorrupt, where, "no integer 'format_version': not a modelbuild manifest");
  int version = j["format_version"].get<int>();
  if (version > kManifestFormat)
    return make_error(Errc::kUnsupported, where,
                      "manifest format_version {} is newer than this modelbuild understands ({}); upgrade modelbuild",
                      version, kManifestFormat);
  if (version < 1) return make_error(Errc::kCorrupt, where, "invalid format_version {}", version);
  if (!j.contains("files") || !j["files"].is_object())
    return make_error(Errc::kCorrupt, where, "no 'files' object: the manifest is corrupt");
  for (const auto& [path, f] : j["files"].items()) {
    if (!is_valid_relative_path(path) || path == kManifestName || path == kSignatureName)
      return make_error(Errc::kCorrupt, where, "invalid file path '{}' in 'files'", path);
    if (!f.is_object() || !f.contains("digest") || !f["digest"].is_string() || !f.contains("size") ||
        !f["size"].is_number_unsigned())
      return make_error(Errc::kCorrupt, where, "file '{}' needs a string 'digest' and an unsigned 'size'", path);
    const std::string& d = f["digest"].get_ref<const std::string&>();
    if (d.rfind("sha256:", 0) != 0 || !Digest::from_hex(d.substr(7)).ok())
      return make_error(Errc::kCorrupt, where, "file '{}' has an invalid digest '{}'", path, d);
  }
  return j;
}

}  // namespace mb
