// `modelbuild keygen --out PREFIX`: an Ed25519 key pair for signing releases.
#include <cstdio>

#include "cli/commands.h"
#include "release/signing.h"

namespace mb::cli {

int keygen_command(const std::vector<std::string>& args) {
  CLI::App app("Make an Ed25519 key pair: PREFIX.key (private, mode 0600) and PREFIX.pub.", "keygen");
  std::string prefix;
  app.add_option("--out", prefix, "path prefix of the two key files")->required();
  if (int rc = parse_args(app, args); rc >= 0) return rc;
  auto fs = make_real_file_system();
  Status st = generate_key_pair(*fs, fs::absolute(prefix));
  if (!st.ok()) return report_error(st.error());
  std::printf("wrote %s.key (private: keep it secret) and %s.pub\n", prefix.c_str(), prefix.c_str());
  return 0;
}

}  // namespace mb::cli
