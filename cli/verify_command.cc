// `modelbuild verify DIR [--pubkey KEY]`: check a release against its manifest.
#include <cstdio>

#include "cli/commands.h"
#include "cli/printing.h"
#include "release/verify.h"

namespace mb::cli {

int verify_command(const std::vector<std::string>& args) {
  CLI::App app("Re-hash every file of a release and check its manifest signature.", "verify");
  std::string dir, pubkey;
  app.add_option("dir", dir, "the release directory")->required();
  app.add_option("--pubkey", pubkey, "require a valid signature by this Ed25519 public key");
  if (int rc = parse_args(app, args); rc >= 0) return rc;

  auto fs = make_real_file_system();
  std::optional<fs::path> key;
  if (!pubkey.empty()) key = fs::absolute(pubkey);
  auto r = verify_release(*fs, fs::absolute(dir), key);
  if (!r.ok()) return report_error(r.error());
  for (const auto& p : r->problems) std::fprintf(stderr, "modelbuild verify: %s\n", p.c_str());
  if (!r->ok()) {
    std::fprintf(stderr, "modelbuild verify: %s does NOT match its manifest (%zu problem%s)\n", dir.c_str(),
                 r->problems.size(), r->problems.size() == 1 ? "" : "s");
    // The release is corrupt or tampered with: a failure, not bad input.
    return 1;
  }
  std::string sig = r->signature_checked ? "signature valid"
                    : r->has_signature   ? "signature present but not checked (pass --pubkey)"
                                         : "unsigned";
  std::printf("%s: %llu files, %s match the manifest; %s\n", dir.c_str(), static_cast<unsigned long long>(r->files),
              human_size(r->bytes).c_str(), sig.c_str());
  return 0;
}

}  // namespace mb::cli
