#include "cache/http_client.h"

#include <curl/curl.h>

#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>

namespace mb {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* s) const { curl_slist_free_all(s); }
};
using CurlHandle = std::unique_ptr<CURL, CurlDeleter>;
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

// What one attempt of a request needs; the callbacks read it.
struct Transfer {
  CurlHandle curl;
  Slist headers;
  const std::function<bool(std::span<const std::byte>)>* on_chunk = nullptr;
  std::FILE* body = nullptr;
  std::string_view bytes;
  uint64_t sent = 0;
  const std::function<void(uint64_t)>* on_progress = nullptr;
};

size_t write_cb(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  long status = 0;
  curl_easy_getinfo(t->curl.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status != 200 || t->on_chunk == nullptr) return size * n;  // an error page: dropped
  auto span = std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size * n);
  return (*t->on_chunk)(span) ? size * n : 0;
}

size_t read_cb(char* buf, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t got = 0;
  if (t->body != nullptr) {
    got = std::fread(buf, 1, size * n, t->body);
    if (got == 0 && std::ferror(t->body)) return CURL_READFUNC_ABORT;
  } else {
    got = std::min(size * n, t->bytes.size() - t->sent);
    std::memcpy(buf, t->bytes.data() + t->sent, got);
  }
  t->sent += got;
  if (t->on_progress != nullptr && *t->on_progress) (*t->on_progress)(t->sent);
  return got;
}

bool retryable(CURLcode code, long status) {
  if (code == CURLE_OK) return status >= 500;
  return code == CURLE_OPERATION_TIMEDOUT || code == CURLE_COULDNT_CONNECT || code == CURLE_RECV_ERROR ||
         code == CURLE_SEND_ERROR || code == CURLE_GOT_NOTHING || code == CURLE_PARTIAL_FILE;
}

}  // namespace

std::string redact_url(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  size_t host = scheme + 3;
  size_t at = url.find('@', host);
  size_t slash = url.find('/', host);
  if (at == std::string::npos || (slash != std::string::npos && at > slash)) return url;
  return url.substr(0, host) + url.substr(at + 1);
}

// libcurl (and OpenSSL) is initialized on the first request, not here, so a
// no-op build with a remote configured never pays for it.
HttpClient::HttpClient(HttpOptions options) : m_options(std::move(options)) {}

namespace {

// Sets up one attempt: the common options (auth, TLS, timeouts) on a fresh handle.
Transfer start(const HttpOptions& o, const std::string& url) {
  global_init();
  Transfer t;
  t.curl.reset(curl_easy_init());
  CURL* c = t.curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, static_cast<long>(o.timeout.count()));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(o.timeout.count()));
  curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 256L * 1024);
  if (o.use_netrc) curl_easy_setopt(c, CURLOPT_NETRC, static_cast<long>(CURL_NETRC_OPTIONAL));
  if (o.use_netrc && !o.netrc_file.empty()) curl_easy_setopt(c, CURLOPT_NETRC_FILE, o.netrc_file.c_str());
  if (!o.ca_bundle.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, o.ca_bundle.c_str());
  if (!o.bearer_token.empty()) {
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
    curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, o.bearer_token.c_str());
  }
  // No "Expect: 100-continue" round trip before each PUT body.
  t.headers.reset(curl_slist_append(nullptr, "Expect:"));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, t.headers.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  return t;
}

// Runs attempts of a request built by `setup` until one is not retryable.
Result<HttpResponse> with_retries(const HttpOptions& o, const std::string& url,
                                  const std::function<Status(Transfer&)>& setup) {
  auto backoff = o.first_backoff;
  for (int attempt = 1;; ++attempt) {
    Transfer t = start(o, url);
    MB_TRY(setup(t));
    // setup() may have moved t; the callbacks must see its final address.
    curl_easy_setopt(t.curl.get(), CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(t.curl.get(), CURLOPT_READDATA, &t);
    CURLcode code = curl_easy_perform(t.curl.get());
    long status = 0;
    curl_easy_getinfo(t.curl.get(), CURLINFO_RESPONSE_CODE, &status);
    if (t.body != nullptr) std::fclose(t.body);
    if (!retryable(code, status) || attempt >= o.attempts) {
      if (code != CURLE_OK) {
        return make_error(code == CURLE_OPERATION_TIMEDOUT ? Errc::kIo : Errc::kIo, redact_url(url), "{}",
                          curl_easy_strerror(code));
      }
      return HttpResponse{status};
    }
    std::this_thread::sleep_for(backoff);
    backoff *= 4;
  }
}

}  // namespace

Result<HttpResponse> HttpClient::head(const std::string& url) const {
  return with_retries(m_options, url, [](Transfer& t) {
    curl_easy_setopt(t.curl.get(), CURLOPT_NOBODY, 1L);
    return Status();
  });
}

Result<HttpResponse> HttpClient::get(const std::string& url,
                                     const std::function<bool(std::span<const std::byte>)>& on_chunk,
                                     const std::function<Status()>& on_restart) const {
  bool first = true;
  return with_retries(m_options, url, [&](Transfer& t) -> Status {
    if (!first && on_restart) MB_TRY(on_restart());
    first = false;
    t.on_chunk = &on_chunk;
    return Status();
  });
}

Result<HttpResponse> HttpClient::put_file(const std::string& url, const fs::path& path, uint64_t size,
                                          const std::function<void(uint64_t)>& on_progress) const {
  return with_retries(m_options, url, [&](Transfer& t) -> Status {
    t.body = std::fopen(path.c_str(), "rb");
    if (t.body == nullptr) return make_error(Errc::kIo, path.string(), "cannot open for upload");
    t.on_progress = &on_progress;
    curl_easy_setopt(t.curl.get(), CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(t.curl.get(), CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(t.curl.get(), CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
    return Status();
  });
}

Result<HttpResponse> HttpClient::put_bytes(const std::string& url, std::string_view body) const {
  return with_retries(m_options, url, [&](Transfer& t) -> Status {
    t.bytes = body;
    curl_easy_setopt(t.curl.get(), CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(t.curl.get(), CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(t.curl.get(), CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body.size()));
    return Status();
  });
}

}  // namespace mb
