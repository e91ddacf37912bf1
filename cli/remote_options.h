#pragma once
// The remote cache's flags (docs/cli.md, "Remote cache") and the RemoteCache
// they configure. Only the build command uses them: status, explain and
// --dry-run never download.
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "base/reporter.h"
#include "cache/remote_cache.h"

namespace mb::cli {

struct RemoteFlags {
  std::string url;  // --remote-cache, else $MODELBUILD_REMOTE_CACHE
  bool upload = true;
  bool required = false;
  std::string token_env = "MODELBUILD_REMOTE_TOKEN";
  std::string token_file;
  std::string ca_bundle;
  int timeout_seconds = 30;
  int transfers = 4;
};
void add_remote_options(CLI::App& app, RemoteFlags& f);
// nullptr when no remote is configured; an error (exit 2) for a token file
// that cannot be read.
Result<std::unique_ptr<RemoteCache>> make_remote_cache(const RemoteFlags& f, Reporter& reporter);

}  // namespace mb::cli
