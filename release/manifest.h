#pragma once
// The release manifest: DIR/manifest.json, what a release is made of.
//
//   {"format_version": 1,
//    "tool": {"name": "modelbuild", "version": "0.1.0"},
//    "target": NAME,
//    "recipe": {"file": "modelbuild.yaml", "digest": "sha256:…"},
//    "provenance": {"repository": true, "commit": "…", "dirty": false},
//    "inputs": {source: {digest, size[, git]}},
//    "steps": [{step, kind, key, output}],
//    "files": {path relative to DIR: {digest, size}},
//    "gate": {accuracy, min_accuracy, passed, report: {…the gate step's report…}},
//    "metrics": {step label: report, for every other step that reported metrics}}
//
// Canonical bytes: keys sorted, two-space indentation, one trailing newline
// (manifest_text). The signature covers exactly these bytes.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/fs.h"
#include "base/result.h"

namespace mb {

inline constexpr int kManifestFormat = 1;
inline constexpr std::string_view kManifestName = "manifest.json";
inline constexpr std::string_view kSignatureName = "manifest.sig";

std::string manifest_text(const nlohmann::json& manifest);

// Parses and checks the manifest's shape. Corrupt JSON or a missing/mistyped
// field: Errc::kCorrupt; a newer format_version: Errc::kUnsupported. Both
// name `where` (the manifest's path).
Result<nlohmann::json> parse_manifest(std::string_view text, const std::string& where);

}  // namespace mb
