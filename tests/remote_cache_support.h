#pragma once
// Servers for the remote cache tests: a real nginx with its WebDAV module
// (started on a free loopback port with its own config, data and temp
// directories, stopped when destroyed), and a tiny fake server that answers
// every request with 500 or never answers at all.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <sstream>
#include <thread>

#include "tests/e2e_support.h"

namespace mb::e2e {

// A loopback port nobody listens on right now.
inline int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

// What the server demands: TLS with a self-signed certificate for
// 127.0.0.1 (cert() is the CA bundle a client needs), and basic auth.
struct NginxOptions {
  bool tls = false;
  std::string user;  // non-empty: basic auth with `user` and `password`
  std::string password;
  std::string limit_rate;  // non-empty: nginx's limit_rate for answers, e.g. "1m" (bytes per second)
};

class Nginx {
 public:
  explicit Nginx(const fs::path& dir, NginxOptions options = {})
      : m_dir(dir), m_port(free_port()), m_options(std::move(options)) {
    const fs::path exe = "/usr/sbin/nginx";
    if (!fs::exists(exe)) {
      ADD_FAILURE() << "nginx is missing: install Debian's nginx-light (scripts/install-deps.sh --test)";
      return;
    }
    fs::create_directories(data());
    fs::create_directories(m_dir / "tmp");
    const std::string d = m_dir.string();
    std::string listen = "    listen 127.0.0.1:" + std::to_string(m_port);
    if (m_options.tls) {
      if (!make_certificate()) return;
      listen += " ssl;\n    ssl_certificate " + cert().string() + ";\n    ssl_certificate_key " + d + "/key.pem";
    }
    std::string auth;
    if (!m_options.limit_rate.empty()) auth += " limit_rate " + m_options.limit_rate + ";";
    if (!m_options.user.empty()) {
      if (!make_password_file()) return;
      auth += " auth_basic modelbuild; auth_basic_user_file " + d + "/htpasswd;";
    }
    // PUT bodies go to client_body_temp_path and are renamed into place when
    // complete, so a killed upload never leaves a partial object visible.
    write_file(m_dir / "nginx.conf",
               std::string(::getuid() == 0 ? "user root;\n" : "") + "daemon off;\nworker_processes 1;\npid " + d +
                   "/nginx.pid;\nerror_log " + d + "/error.log;\nevents { worker_connections 64; }\nhttp {\n" +
                   "  access_log " + d + "/access.log;\n  client_body_temp_path " + d + "/tmp;\n  proxy_temp_path " +
                   d + "/tmp;\n  fastcgi_temp_path " + d + "/tmp;\n  uwsgi_temp_path " + d +
                   "/tmp;\n  scgi_temp_path " + d + "/tmp;\n  server {\n" + listen +
                   ";\n    client_max_body_size 0;\n    location / { root " + data().string() +
                   "; dav_methods PUT; create_full_put_path on; dav_access user:rw group:r all:r;" + auth +
                   " }\n  }\n}\n");
    // nginx and its workers get a process group of their own, so that
    // kill_hard() reaches every worker even if it was forked after a look
    // at the master's children (a worker left behind keeps serving, and
    // keeps ctest waiting on its output pipe).
    m_pid = ::fork();
    if (m_pid == 0) {
      ::setpgid(0, 0);
      ::execl(exe.c_str(), "nginx", "-c", (m_dir / "nginx.conf").c_str(), "-p", d.c_str(), nullptr);
      ::_exit(127);
    }
    if (m_pid > 0) ::setpgid(m_pid, m_pid);  // both sides, so neither races the other
    // Ready when it accepts a connection.
    for (int i = 0; i < 100; ++i) {
      if (connects()) return;
      ::usleep(50 * 1000);
    }
    ADD_FAILURE() << "nginx did not start: " << read_file(m_dir / "error.log");
  }
  ~Nginx() {
    const pid_t group = m_pid;
    stop();
    if (group > 0) ::kill(-group, SIGKILL);  // any worker the master did not take down
  }
  void stop(int signal = SIGTERM) {
    if (m_pid <= 0) return;
    ::kill(m_pid, signal);
    ::waitpid(m_pid, nullptr, 0);
    m_pid = -1;
  }
  // SIGKILL for the master and its workers at once, as a crash or an OOM
  // kill would do: a worker would otherwise finish the answer it is sending.
  void kill_hard() {
    if (m_pid <= 0) return;
    ::kill(-m_pid, SIGKILL);  // the whole group: master and workers at once
    stop(SIGKILL);
  }
  std::string url() const {
    return std::string(m_options.tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(m_port) + "/mb";
  }
  fs::path data() const { return m_dir / "data"; }
  fs::path cert() const { return m_dir / "cert.pem"; }
  // The stored objects under data()/mb/<cas|ac>/.
  std::vector<fs::path> objects(const char* kind) const {
    std::vector<fs::path> out;
    const fs::path dir = data() / "mb" / kind;
    if (fs::exists(dir))
      for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path());
    return out;
  }

 private:
  // openssl(1) makes the key, the certificate and the password hash, so the
  // tests need nothing beyond what the build already links.
  bool openssl(const std::vector<std::string>& args, std::string* out = nullptr) {
    std::vector<std::string> argv = {"openssl"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run_subprocess(argv, {});
    if (!r.ok() || r->exit_code != 0) {
      ADD_FAILURE() << "openssl " << args.front() << " failed: " << (r.ok() ? r->output : r.error().message);
      return false;
    }
    if (out != nullptr) *out = r->stdout_text;
    return true;
  }
  bool make_certificate() {
    return openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout",
                    (m_dir / "key.pem").string(), "-out", cert().string()});
  }
  bool make_password_file() {
    std::string hash;
    if (!openssl({"passwd", "-apr1", m_options.password}, &hash)) return false;  // stdout only
    while (!hash.empty() && (hash.back() == '\n' || hash.back() == '\r')) hash.pop_back();
    write_file(m_dir / "htpasswd", m_options.user + ":" + hash + "\n");
    return true;
  }
  bool connects() const {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(m_port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(s);
    return ok;
  }
  fs::path m_dir;
  int m_port;
  NginxOptions m_options;
  pid_t m_pid = -1;
};

// A server that answers every request with 500, never answers, or starts a
// 200 answer and dies half-way through it.
enum class FakeMode { kError500, kSilent, kCutOff };

class FakeServer {
 public:
  explicit FakeServer(FakeMode mode) : m_mode(mode) {
    m_fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(m_fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(m_fd, 16);
    ::getsockname(m_fd, reinterpret_cast<sockaddr*>(&a), &len);
    m_port = ntohs(a.sin_port);
    m_thread = std::thread([this] { serve(); });
  }
  ~FakeServer() {
    m_stop = true;
    m_thread.join();
    for (int c : m_held) ::close(c);
    ::close(m_fd);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(m_port) + "/mb"; }
  int requests() const { return m_requests; }

 private:
  void serve() {
    while (!m_stop) {
      pollfd p{m_fd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept(m_fd, nullptr, nullptr);
      if (c < 0) continue;
      ++m_requests;
      if (m_mode == FakeMode::kSilent) {
        m_held.push_back(c);  // never answered
        continue;
      }
      char buf[4096];
      std::string req;
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      const char k500[] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      const char kCut[] = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n{\"format\":";
      const std::string reply = m_mode == FakeMode::kError500 ? k500 : kCut;
      (void)!::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
      ::close(c);
    }
  }
  FakeMode m_mode;
  int m_fd = -1, m_port = 0;
  std::atomic<bool> m_stop{false};
  std::atomic<int> m_requests{0};
  std::vector<int> m_held;
  std::thread m_thread;
};

}  // namespace mb::e2e
