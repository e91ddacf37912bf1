#pragma once
// `modelbuild serve` started by an end-to-end test on the bundled example
// (examples/tiny's 4-bit base with its tools adapter at run time), on a port
// the server picks itself (--port 0; its stdout line says which). The
// process is killed when the object dies, so a failed assertion never leaks
// it. Not thread-safe.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <regex>
#include <thread>

#include "tests/e2e_support.h"

namespace mb::e2e {

inline fs::path tiny() { return source_dir() / "examples" / "tiny"; }

// A loopback port nobody listens on right now (the kernel's pick, released
// at once), for servers that must be told their port in advance.
inline int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

class Serve {
 public:
  // `args` come after `serve --model … --adapter … --threads 1 --port 0`;
  // `env` is added to the environment.
  explicit Serve(std::vector<std::string> args = {}, const std::map<std::string, std::string>& env = {}) {
    std::vector<std::string> argv = {binary().string(), "serve",
                                     "--model",         (tiny() / "models" / "base-4bit").string(),
                                     "--adapter",       (tiny() / "adapters" / "tools-lora").string(),
                                     "--threads",       "1",
                                     "--port",          "0"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> envs;
    for (char** e = environ; *e; ++e) {
      std::string kv = *e;
      if (!env.count(kv.substr(0, kv.find('=')))) envs.push_back(kv);
    }
    for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
    std::vector<char*> a, e;
    for (auto& s : argv) a.push_back(s.data());
    for (auto& s : envs) e.push_back(s.data());
    a.push_back(nullptr);
    e.push_back(nullptr);
    const std::string out = (m_dir.path() / "stdout").string(), err = (m_dir.path() / "stderr").string();
    m_pid = ::fork();
    if (m_pid == 0) {
      if (!std::freopen(out.c_str(), "w", stdout) || !std::freopen(err.c_str(), "w", stderr)) ::_exit(126);
      ::execve(a[0], a.data(), e.data());
      ::_exit(127);
    }
    wait_listening();
  }
  ~Serve() {
    if (m_pid <= 0) return;
    ::kill(m_pid, SIGKILL);
    ::waitpid(m_pid, nullptr, 0);
  }
  Serve(const Serve&) = delete;
  Serve& operator=(const Serve&) = delete;

  // 0 when the server never said it was listening.
  int port() const { return m_port; }
  std::string origin() const { return fmt::format("http://127.0.0.1:{}", m_port); }
  std::string stdout_text() const { return read_file(m_dir.path() / "stdout"); }
  std::string stderr_text() const { return read_file(m_dir.path() / "stderr"); }
  pid_t pid() const { return m_pid; }

 private:
  void wait_listening() {
    const std::regex line(R"(listening on http://[^:]+:(\d+)\n)");
    for (int i = 0; i < 300 && m_pid > 0; ++i) {
      std::smatch m;
      const std::string out = stdout_text();
      if (std::regex_search(out, m, line)) {
        m_port = std::stoi(m[1]);
        return;
      }
      if (::waitpid(m_pid, nullptr, WNOHANG) == m_pid) {
        m_pid = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "modelbuild serve did not start listening: " << stderr_text();
  }

  TempDir m_dir{"serve-e2e"};
  pid_t m_pid = -1;
  int m_port = 0;
};

}  // namespace mb::e2e
