#include "release/verify.h"

#include <set>

#include "cache/digest.h"
#include "release/manifest.h"
#include "release/signing.h"

namespace mb {
namespace {

// Every entry below `dir` that is not a directory, relative and '/'-separated.
Status walk(const FileSystem& fs, const fs::path& dir, const std::string& prefix, std::set<std::string>& out) {
  MB_ASSIGN(auto names, fs.list_dir(dir));
  for (const auto& name : names) {
    const std::string rel = prefix + name;
    MB_ASSIGN(FileStat st, fs.lstat(dir / name));
    if (st.is_dir)
      MB_TRY(walk(fs, dir / name, rel + "/", out));
    else
      out.insert(rel);
  }
  return {};
}

}  // namespace

Result<VerifyResult> verify_release(FileSystem& fs, const fs::path& dir, const std::optional<fs::path>& pubkey) {
  VerifyResult r;
  const fs::path manifest_file = dir / kManifestName;
  auto text = fs.read_file(manifest_file);
  if (!text.ok()) {
    if (text.error().code == Errc::kNotFound)
      return make_error(Errc::kInvalidInput, manifest_file.string(), "no manifest: not a modelbuild release");
    return text.error();
  }
  MB_ASSIGN(nlohmann::json m, parse_manifest(*text, manifest_file.string()));

  const fs::path sig_file = dir / kSignatureName;
  auto sig = fs.read_file(sig_file);
  r.has_signature = sig.ok();
  if (pubkey) {
    if (!sig.ok()) {
      // Load the key anyway: a missing key is an input error, not a finding.
      Status key = verify_signature(fs, *pubkey, "", "", sig_file.string());
      if (!key.ok() && key.error().code != Errc::kCorrupt) return key.error();
      r.problems.push_back(fmt::format("{}: missing, but --pubkey asks for a signed release", sig_file.string()));
    } else {
      Status v = verify_signature(fs, *pubkey, *text, *sig, sig_file.string());
      if (!v.ok() && v.error().code != Errc::kCorrupt) return v.error();
      if (!v.ok()) r.problems.push_back(v.error().to_string());
      r.signature_checked = true;
    }
  }

  std::set<std::string> present;
  MB_TRY(walk(fs, dir, "", present));
  present.erase(std::string(kManifestName));
  present.erase(std::string(kSignatureName));
  for (const auto& [rel, f] : m["files"].items()) {
    const fs::path file = dir / rel;
    if (!present.erase(rel)) {
      r.problems.push_back(fmt::format("{}: missing", file.string()));
      continue;
    }
    auto st = fs.stat(file);
    if (!st.ok() || !st->is_regular) {
      r.problems.push_back(fmt::format("{}: not a regular file", file.string()));
      continue;
    }
    const uint64_t size = f["size"].get<uint64_t>();
    if (st->size != size) {
      r.problems.push_back(fmt::format("{}: size {} bytes, the manifest says {}", file.string(), st->size, size));
      continue;
    }
    MB_ASSIGN(Digest d, digest_file(fs, file));
    const std::string want = f["digest"].get<std::string>();
    if ("sha256:" + d.hex() != want)
      r.problems.push_back(fmt::format("{}: content changed (sha256 {}…, the manifest says {}…)", file.string(),
                                       d.short_hex(), want.substr(7, 12)));
    r.files++;
    r.bytes += size;
  }
  for (const auto& extra : present)
    r.problems.push_back(fmt::format("{}: not in the manifest", (dir / extra).string()));
  return r;
}

}  // namespace mb
