#pragma once
// HttpClient: the few HTTP requests the remote cache makes, on libcurl.
//
// Every transfer streams: a download hands each chunk to a callback (the
// caller hashes and writes it), an upload reads its body from a file. The
// options hold the only secrets modelbuild knows (a bearer token); they are
// given to libcurl and never formatted into a message: errors name the URL
// with any user:password@ part removed (redact_url). Thread-safe: each
// request uses its own curl handle, so several threads may transfer at once.
#include <chrono>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "base/fs.h"
#include "base/result.h"

namespace mb {

struct HttpOptions {
  std::string bearer_token;  // empty: none
  bool use_netrc = true;     // basic auth from a .netrc entry naming the host
  std::string netrc_file;    // empty: libcurl's default, $HOME/.netrc
  std::string ca_bundle;     // empty: the system's CA store
  // A transfer that moves under one byte per second for this long, or cannot
  // connect in this long, is a timeout.
  std::chrono::seconds timeout{30};
  int attempts = 3;  // tries for a timeout, a lost connection or a 5xx
  std::chrono::milliseconds first_backoff{200};
};

struct HttpResponse {
  long status = 0;  // 0 when the request never got an answer
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options);

  Result<HttpResponse> head(const std::string& url) const;
  // The body of a 200 goes to `on_chunk`; any other status's body is dropped.
  // `on_chunk` returning false aborts the transfer (Errc::kIo). A retry
  // calls `on_restart` first, so the caller can reset its file and hash.
  Result<HttpResponse> get(const std::string& url, const std::function<bool(std::span<const std::byte>)>& on_chunk,
                           const std::function<Status()>& on_restart) const;
  // PUT with the body streamed from `path` (`size` bytes).
  Result<HttpResponse> put_file(const std::string& url, const fs::path& path, uint64_t size,
                                const std::function<void(uint64_t)>& on_progress) const;
  Result<HttpResponse> put_bytes(const std::string& url, std::string_view body) const;

 private:
  HttpOptions m_options;
};

// `url` without a user:password@ part, for messages.
std::string redact_url(const std::string& url);

}  // namespace mb
