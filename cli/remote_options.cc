#include "cli/remote_options.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace mb::cli {

void add_remote_options(CLI::App& app, RemoteFlags& f) {
  app.add_option("--remote-cache", f.url, "shared cache URL (Bazel HTTP cache protocol; or $MODELBUILD_REMOTE_CACHE)");
  app.add_flag("--remote-upload,!--no-remote-upload", f.upload, "upload local results to the remote (default: yes)");
  app.add_flag("--remote-required", f.required, "fail instead of building locally when the remote cannot be used");
  app.add_option("--remote-token-env", f.token_env, "environment variable holding a bearer token")
      ->capture_default_str();
  app.add_option("--remote-token-file", f.token_file, "file holding a bearer token");
  app.add_option("--remote-ca-bundle", f.ca_bundle, "CA bundle (PEM) for an HTTPS remote");
  app.add_option("--remote-timeout", f.timeout_seconds, "seconds without progress before a transfer is retried")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  app.add_option("--remote-transfers", f.transfers, "transfers at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
}

namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

Result<std::unique_ptr<RemoteCache>> make_remote_cache(const RemoteFlags& f, Reporter& reporter) {
  RemoteOptions o;
  o.url = f.url;
  if (o.url.empty()) {
    const char* env = std::getenv("MODELBUILD_REMOTE_CACHE");
    if (env != nullptr) o.url = env;
  }
  if (o.url.empty()) return std::unique_ptr<RemoteCache>();
  if (o.url.rfind("http://", 0) != 0 && o.url.rfind("https://", 0) != 0) {
    return make_error(Errc::kInvalidInput, "--remote-cache", "'{}' is not an http:// or https:// URL",
                      redact_url(o.url));
  }
  o.upload = f.upload;
  o.required = f.required;
  o.transfers = f.transfers;
  o.http.ca_bundle = f.ca_bundle;
  // libcurl alone reads only $HOME/.netrc; $NETRC names another file, so a
  // CI job can keep its credentials out of the home directory.
  if (const char* netrc = std::getenv("NETRC"); netrc != nullptr && *netrc != '\0') o.http.netrc_file = netrc;
  o.http.timeout = std::chrono::seconds(f.timeout_seconds);
  if (!f.token_file.empty()) {
    std::ifstream in(f.token_file);
    if (!in) return make_error(Errc::kInvalidInput, f.token_file, "cannot read the remote cache's token file");
    std::stringstream text;
    text << in.rdbuf();
    o.http.bearer_token = trim(text.str());
  } else if (const char* token = std::getenv(f.token_env.c_str()); token != nullptr) {
    o.http.bearer_token = trim(token);
  }
  return std::make_unique<RemoteCache>(std::move(o), reporter);
}

}  // namespace mb::cli
