#include "gate/runner_openai.h"

#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "base/interrupt.h"
#include "base/subprocess.h"
#include "base/temp_dir.h"
#include "gate/runner_config.h"

namespace mb::gate {
namespace {

using Clock = std::chrono::steady_clock;

std::chrono::milliseconds millis(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

double number_or(const nlohmann::json& object, const char* key, double fallback) {
  return object.is_object() && object.contains(key) && object[key].is_number() ? object[key].get<double>() : fallback;
}

// A server process the runner started, in its own process group, with its
// output in a log file; stopped (SIGTERM, then SIGKILL) on destruction.
class ServerProcess {
 public:
  ~ServerProcess() { stop(); }

  Status start(const std::vector<std::string>& argv) {
    m_log = m_dir.path() / "server.log";
    int log_fd = ::open(m_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    int exec_pipe[2];
    if (log_fd < 0 || null_fd < 0 || ::pipe2(exec_pipe, O_CLOEXEC) != 0) {
      if (log_fd >= 0) ::close(log_fd);
      if (null_fd >= 0) ::close(null_fd);
      return make_error(Errc::kIo, "runner", "cannot set up the server process: {}", std::strerror(errno));
    }
    std::vector<std::string> copy = argv;
    std::vector<char*> args;
    for (auto& a : copy) args.push_back(a.data());
    args.push_back(nullptr);
    m_pid = ::fork();
    if (m_pid == 0) {
      ::setpgid(0, 0);
      ::dup2(null_fd, 0);
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
      ::execvp(args[0], args.data());
      int err = errno;
      (void)!::write(exec_pipe[1], &err, sizeof err);
      ::_exit(127);
    }
    ::close(log_fd);
    ::close(null_fd);
    ::close(exec_pipe[1]);
    if (m_pid < 0) {
      ::close(exec_pipe[0]);
      return make_error(Errc::kIo, "runner", "fork failed: {}", std::strerror(errno));
    }
    ::setpgid(m_pid, m_pid);            // also from here, so that stop() never races the child's own call
    interrupt::add_child_group(m_pid);  // an interrupt stops the server too
    int exec_errno = 0;
    ssize_t n = ::read(exec_pipe[0], &exec_errno, sizeof exec_errno);
    ::close(exec_pipe[0]);
    if (n == sizeof exec_errno) {
      ::waitpid(m_pid, nullptr, 0);
      interrupt::remove_child_group(m_pid);
      m_pid = -1;
      return make_error(Errc::kStepFailed, "runner", "cannot start the server '{}': {}", argv[0],
                        std::strerror(exec_errno));
    }
    return {};
  }

  // Whether the process has exited; its status goes to `how`.
  bool exited(std::string* how = nullptr) {
    if (m_pid <= 0) return true;
    int status = 0;
    if (::waitpid(m_pid, &status, WNOHANG) != m_pid) return false;
    interrupt::remove_child_group(m_pid);
    m_pid = -1;
    if (how)
      *how = WIFEXITED(status) ? fmt::format("exit status {}", WEXITSTATUS(status))
                               : fmt::format("signal {}", WTERMSIG(status));
    return true;
  }

  void stop() {
    if (m_pid <= 0) return;
    ::kill(-m_pid, SIGTERM);
    for (int i = 0; i < 50 && !exited(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (m_pid > 0) {
      ::kill(-m_pid, SIGKILL);
      ::waitpid(m_pid, nullptr, 0);
      interrupt::remove_child_group(m_pid);
      m_pid = -1;
    }
  }

  std::string log_tail() const {
    auto fs = make_real_file_system();
    auto text = fs->read_file(m_log);
    return text.ok() ? tail_lines(*text, 5) : "";
  }

 private:
  TempDir m_dir{"modelbuild-server"};
  fs::path m_log;
  pid_t m_pid = -1;
};

class OpenAIRunner : public Runner {
 public:
  OpenAIRunner(BaseUrl url, std::string model, double timeout_s)
      : m_url(std::move(url)), m_model(std::move(model)), m_timeout_s(timeout_s), m_client(m_url.origin()) {
    m_client.set_connection_timeout(std::chrono::seconds(kConnectTimeoutS));
    m_client.set_read_timeout(millis(timeout_s));
    m_client.set_write_timeout(std::chrono::seconds(60));
  }

  Status start_server(const nlohmann::json& server, const RunnerTarget& target) {
    MB_ASSIGN(auto words, command_words(server.value("command", nlohmann::json()), "runner.server.command"));
    const std::vector<std::pair<std::string, std::string>> values = {
        {"model", target.model_dir.string()},
        {"adapter", target.adapters.empty() ? "" : target.adapters[0].string()},
        {"host", m_url.host},
        {"port", std::to_string(m_url.port)},
    };
    std::vector<std::string> argv;
    for (const auto& w : words) argv.push_back(substitute(w, values));
    const double ready_timeout_s = number_or(server, "ready_timeout_s", 60.0);

    httplib::Client probe(m_url.origin());
    probe.set_connection_timeout(std::chrono::milliseconds(500));
    probe.set_read_timeout(std::chrono::seconds(5));
    // A server already there would answer for ours and hide its failure.
    if (ready(probe))
      return make_error(Errc::kStepFailed, "runner",
                        "something already answers at {}; choose another port for the "
                        "server the gate starts",
                        m_url.normalized());
    m_server = std::make_unique<ServerProcess>();
    MB_TRY(m_server->start(argv));
    auto deadline = Clock::now() + millis(ready_timeout_s);
    while (Clock::now() < deadline) {
      std::string how;
      if (m_server->exited(&how))
        return make_error(Errc::kStepFailed, "runner", "the server '{}' exited ({}) before it was ready: {}", argv[0],
                          how, m_server->log_tail());
      if (ready(probe)) return {};
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return make_error(Errc::kStepFailed, "runner", "the server '{}' did not come up at {} within {} s: {}", argv[0],
                      m_url.normalized(), ready_timeout_s, m_server->log_tail());
  }

  // httplib names the failing call ("Read", "Connection"); a user wants to
  // know what happened. A read that fails after the timeout timed out; one
  // that fails sooner lost its connection.
  std::string describe(httplib::Error e, double elapsed_s) const {
    switch (e) {
      case httplib::Error::Read:
        if (elapsed_s >= 0.9 * m_timeout_s)
          return fmt::format("timed out after {:g} s (runner.timeout_s)", m_timeout_s);
        return "the connection closed before a reply";
      case httplib::Error::Connection:
        if (elapsed_s >= 0.9 * kConnectTimeoutS) return fmt::format("could not connect within {} s", kConnectTimeoutS);
        return "connection refused (nothing is listening there)";
      default:
        return httplib::to_string(e);
    }
  }
  static double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

  Result<RunnerReply> respond(const Suite& suite, const Case& c) override {
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    if (!suite.system.empty()) messages.push_back({{"role", "system"}, {"content", suite.system}});
    messages.push_back({{"role", "user"}, {"content", c.prompt}});
    nlohmann::ordered_json body = {{"model", m_model},
                                   {"messages", messages},
                                   {"temperature", 0},
                                   {"max_tokens", suite.max_tokens},
                                   {"stream", false}};
    if (!suite.tools.empty()) body["tools"] = suite.tools;
    const std::string where = m_url.normalized() + "/v1/chat/completions";
    auto start = Clock::now();
    auto res = m_client.Post(m_url.prefix + "/v1/chat/completions", body.dump(), "application/json");
    if (!res)
      return make_error(Errc::kStepFailed, "runner", "no reply from {}: {}", where,
                        describe(res.error(), seconds_since(start)));
    if (res->status != 200)
      return make_error(Errc::kStepFailed, "runner", "{} answered HTTP {}: {}", where, res->status,
                        res->body.substr(0, 200));
    auto j = nlohmann::json::parse(res->body, nullptr, false);
    const nlohmann::json* msg = nullptr;
    if (!j.is_discarded() && j.is_object() && j.contains("choices") && j["choices"].is_array() &&
        !j["choices"].empty() && j["choices"][0].is_object() && j["choices"][0].contains("message") &&
        j["choices"][0]["message"].is_object())
      msg = &j["choices"][0]["message"];
    if (!msg)
      return make_error(Errc::kStepFailed, "runner", "malformed reply from {}: {}", where, res->body.substr(0, 200));
    RunnerReply r;
    if (msg->contains("content") && (*msg)["content"].is_string()) r.text = (*msg)["content"];
    if (msg->contains("tool_calls")) {
      const auto& calls = (*msg)["tool_calls"];
      if (!calls.is_array() && !calls.is_null())
        return make_error(Errc::kStepFailed, "runner", "malformed reply from {}: tool_calls is {}, not a list", where,
                          calls.type_name());
      r.tool_calls = calls;
    }
    if (j.contains("usage") && j["usage"].is_object())
      r.completion_tokens = int(number_or(j["usage"], "completion_tokens", 0));
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return r;
  }

 private:
  bool ready(httplib::Client& probe) const {
    for (const char* path : {"/v1/models", "/health"}) {
      auto res = probe.Get(m_url.prefix + path);
      if (res && res->status == 200) return true;
      if (!res) return false;  // nothing listens yet
    }
    return false;
  }

  static constexpr int kConnectTimeoutS = 10;
  BaseUrl m_url;
  std::string m_model;
  double m_timeout_s;
  httplib::Client m_client;
  std::unique_ptr<ServerProcess> m_server;
};

}  // namespace

Result<std::unique_ptr<Runner>> make_openai_runner(const nlohmann::json& c, const RunnerTarget& target) {
  MB_ASSIGN(BaseUrl url, parse_base_url(openai_url(c), "runner.url"));
  std::string model = c.contains("model") && c["model"].is_string() ? c["model"].get<std::string>()
                                                                    : target.model_dir.filename().string();
  if (model.empty()) model = "default";
  auto runner = std::make_unique<OpenAIRunner>(std::move(url), std::move(model), number_or(c, "timeout_s", 600.0));
  if (c.contains("server")) MB_TRY(runner->start_server(c["server"], target));
  return std::unique_ptr<Runner>(std::move(runner));
}

}  // namespace mb::gate
