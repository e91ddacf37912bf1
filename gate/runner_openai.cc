#include "gate/runner_openai.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <httplib.h>

namespace mb::gate {
namespace {

using Clock = std::chrono::steady_clock;

// A server process the runner started; killed on destruction.
class ServerProcess {
 public:
  ~ServerProcess() { stop(); }
  Status start(const std::vector<std::string>& argv) {
    std::vector<std::string> copy = argv;
    std::vector<char*> args;
    for (auto& a : copy) args.push_back(a.data());
    args.push_back(nullptr);
    m_pid = ::fork();
    if (m_pid < 0) return make_error(Errc::kIo, "runner", "fork failed");
    if (m_pid == 0) {
      ::setpgid(0, 0);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
    return {};
  }
  bool exited() {
    if (m_pid <= 0) return true;
    int status;
    if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
      m_pid = -1;
      return true;
    }
    return false;
  }
  void stop() {
    if (m_pid <= 0) return;
    ::kill(-m_pid, SIGTERM);
    for (int i = 0; i < 50 && !exited(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (m_pid > 0) {
      ::kill(-m_pid, SIGKILL);
      ::waitpid(m_pid, nullptr, 0);
      m_pid = -1;
    }
  }

 private:
  pid_t m_pid = -1;
};

class OpenAIRunner : public Runner {
 public:
  OpenAIRunner(std::string url, std::string model, double timeout_s)
      : m_url(std::move(url)), m_model(std::move(model)), m_client(m_url) {
    m_client.set_connection_timeout(std::chrono::seconds(10));
    m_client.set_read_timeout(std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
  }

  Status start_server(const nlohmann::json& server, const RunnerTarget& target) {
    std::vector<std::string> argv;
    for (const auto& w : server.value("command", nlohmann::json::array())) {
      std::string word = w.get<std::string>();
      for (size_t p; (p = word.find("{model}")) != std::string::npos;) word.replace(p, 7, target.model_dir.string());
      for (size_t p; (p = word.find("{adapter}")) != std::string::npos;)
        word.replace(p, 9, target.adapters.empty() ? "" : target.adapters[0].string());
      argv.push_back(std::move(word));
    }
    if (argv.empty()) return make_error(Errc::kInvalidInput, "runner", "server needs 'command'");
    m_server = std::make_unique<ServerProcess>();
    MB_TRY(m_server->start(argv));
    auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(server.value("ready_timeout_s", 60.0) * 1000));
    httplib::Client probe(m_url);
    probe.set_connection_timeout(std::chrono::milliseconds(500));
    while (Clock::now() < deadline) {
      if (m_server->exited())
        return make_error(Errc::kStepFailed, "runner", "the server command exited before it was ready ({})", argv[0]);
      auto res = probe.Get("/v1/models");
      if (!res || res->status != 200) res = probe.Get("/health");
      if (res && res->status == 200) return {};
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return make_error(Errc::kStepFailed, "runner", "the server at {} did not come up within {} s", m_url,
                      server.value("ready_timeout_s", 60.0));
  }

  Result<RunnerReply> respond(const Suite& suite, const Case& c) override {
    nlohmann::json messages = nlohmann::json::array();
    if (!suite.system.empty()) messages.push_back({{"role", "system"}, {"content", suite.system}});
    messages.push_back({{"role", "user"}, {"content", c.prompt}});
    nlohmann::ordered_json body = {{"model", m_model}, {"messages", nlohmann::ordered_json::parse(messages.dump())},
                                   {"temperature", 0}, {"max_tokens", suite.max_tokens}, {"stream", false}};
    if (!suite.tools.empty()) body["tools"] = suite.tools;
    auto start = Clock::now();
    auto res = m_client.Post("/v1/chat/completions", body.dump(), "application/json");
    if (!res)
      return make_error(Errc::kStepFailed, "runner", "no reply from {}: {}", m_url, httplib::to_string(res.error()));
    if (res->status != 200)
      return make_error(Errc::kStepFailed, "runner", "{} answered HTTP {}: {}", m_url, res->status,
                        res->body.substr(0, 200));
    auto j = nlohmann::json::parse(res->body, nullptr, false);
    if (j.is_discarded() || !j.contains("choices") || !j["choices"].is_array() || j["choices"].empty() ||
        !j["choices"][0].contains("message") || !j["choices"][0]["message"].is_object())
      return make_error(Errc::kStepFailed, "runner", "malformed reply from {}: {}", m_url, res->body.substr(0, 200));
    const auto& msg = j["choices"][0]["message"];
    RunnerReply r;
    if (msg.contains("content") && msg["content"].is_string()) r.text = msg["content"];
    if (msg.contains("tool_calls")) r.tool_calls = msg["tool_calls"];
    if (j.contains("usage") && j["usage"].is_object()) r.completion_tokens = j["usage"].value("completion_tokens", 0);
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return r;
  }

 private:
  std::string m_url;
  std::string m_model;
  httplib::Client m_client;
  std::unique_ptr<ServerProcess> m_server;
};

}  // namespace

Result<std::unique_ptr<Runner>> make_openai_runner(const nlohmann::json& c, const RunnerTarget& target) {
  std::string url = c.value("url", std::string("http://127.0.0.1:8080"));
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
    return make_error(Errc::kInvalidInput, "runner", "openai runner url must start with http:// or https://, got '{}'",
                      url);
  auto runner = std::make_unique<OpenAIRunner>(url, c.value("model", target.model_dir.filename().string()),
                                               c.value("timeout_s", 600.0));
  if (c.contains("server")) MB_TRY(runner->start_server(c["server"], target));
  return std::unique_ptr<Runner>(std::move(runner));
}

}  // namespace mb::gate
