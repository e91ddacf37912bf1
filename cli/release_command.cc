// `modelbuild release TARGET --to DIR [--sign KEY] [--allow-dirty]`.
#include <cstdio>

#include "cli/commands.h"
#include "cli/printing.h"
#include "release/release.h"

namespace mb::cli {

int release_command(const std::vector<std::string>& args) {
  CLI::App app("Build a gated target and write it with its manifest (and signature) into a new directory.", "release");
  GlobalOptions g;
  add_global_options(app, g);
  std::string target, to, sign;
  ReleaseOptions options;
  app.add_option("target", target, "the target to release (it must have a gate)")->required();
  app.add_option("--to", to, "the release directory (new or empty)")->required();
  app.add_option("--sign", sign, "sign the manifest with this Ed25519 private key (from `modelbuild keygen`)");
  app.add_flag("--allow-dirty", options.allow_dirty, "release even when the git working tree has uncommitted changes");
  if (int rc = parse_args(app, args); rc >= 0) return rc;

  auto session = open_session(g);
  if (!session.ok()) return report_error(session.error());
  Session& s = *session;
  options.to = to;
  if (!sign.empty()) options.sign_key = fs::absolute(sign);
  auto done = release_target(*s.fs, *s.reporter, s.rules, s.recipe, s.build, target, options);
  if (!done.ok()) return report_error(*s.reporter, done.error());
  const ReleaseSummary& r = *done;
  std::string where = r.provenance.in_repository ? fmt::format("commit {}{}", r.provenance.commit.substr(0, 12),
                                                               r.provenance.dirty ? " (dirty working tree)" : "")
                                                 : "not in a git repository";
  std::printf("released %s to %s: %llu files, %s, accuracy %.4g%%, %s, %s\n", target.c_str(),
              relative_to_cwd(r.dir).c_str(), static_cast<unsigned long long>(r.files), human_size(r.bytes).c_str(),
              100 * r.accuracy, where.c_str(), r.is_signed ? "signed" : "unsigned");
  return 0;
}

}  // namespace mb::cli
