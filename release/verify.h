#pragma once
// `modelbuild verify DIR [--pubkey KEY]`: is this release what its manifest
// says it is?
//
// Re-hashes every file the manifest lists (size first, then SHA-256) and
// walks DIR for files it does not list. With a public key, manifest.sig must
// exist and match manifest.json byte for byte; without one, the signature is
// not checked (and the result says so). Every problem is collected, each
// naming the file, so one run shows everything that is wrong.
#include <optional>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/result.h"

namespace mb {

struct VerifyResult {
  std::vector<std::string> problems;  // one sentence each, naming the file
  uint64_t files = 0;                 // files checked
  uint64_t bytes = 0;
  bool signature_checked = false;
  bool has_signature = false;
  bool ok() const { return problems.empty(); }
};

// Errors (a missing or corrupt manifest, an unreadable key) are returned as
// such; problems with the release's content are in the result.
Result<VerifyResult> verify_release(FileSystem& fs, const fs::path& dir, const std::optional<fs::path>& pubkey);

}  // namespace mb
