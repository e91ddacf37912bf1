// `modelbuild serve` end to end: the gate's openai runner starts the real
// binary from its own `server:` config and runs the example's suite through
// it (the request, tools and tool_calls parsing paths are the real ones),
// and bad requests to a running server get 400s.
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "base/reporter.h"
#include "gate/gate.h"
#include "gate/suite.h"
#include "tests/e2e_support.h"

namespace mb::e2e {
namespace {

// A port nobody listens on right now (the kernel's pick, released at once).
int free_port() {
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

fs::path tiny() { return source_dir() / "examples" / "tiny"; }

// `modelbuild serve` started by the test; killed on destruction, so a failed
// assertion never leaks the process.
class Serve {
 public:
  explicit Serve(int port) {
    std::vector<std::string> argv = {binary().string(), "serve",
                                     "--model",         (tiny() / "models" / "base-4bit").string(),
                                     "--adapter",       (tiny() / "adapters" / "tools-lora").string(),
                                     "--threads",       "1",
                                     "--port",          std::to_string(port)};
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    m_pid = ::fork();
    if (m_pid == 0) {
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~Serve() {
    if (m_pid <= 0) return;
    ::kill(m_pid, SIGKILL);
    ::waitpid(m_pid, nullptr, 0);
  }
  pid_t pid() const { return m_pid; }

 private:
  pid_t m_pid = -1;
};

bool wait_healthy(httplib::Client& client) {
  for (int i = 0; i < 150; ++i) {
    auto res = client.Get("/health");
    if (res && res->status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return false;
}

TEST(ServeCli, OpenAIRunnerThroughServeMatchesNativeRunnerCaseByCase) {
  auto fs = make_real_file_system();
  auto suite = gate::load_suite(*fs, tiny() / "suite.yaml");
  ASSERT_TRUE(suite.ok()) << suite.error().to_string();
  gate::RunnerTarget target;
  target.model_dir = tiny() / "models" / "base-4bit";
  target.adapters = {tiny() / "adapters" / "tools-lora"};
  target.threads = 1;
  NullReporter reporter;

  auto native = gate::run_gate(*fs, *suite, target, nlohmann::json{{"type", "native"}}, reporter);
  ASSERT_TRUE(native.ok()) << native.error().to_string();

  const int port = free_port();
  ASSERT_GT(port, 0);
  const nlohmann::json openai = {{"type", "openai"},
                                 {"url", fmt::format("http://127.0.0.1:{}/v1", port)},
                                 {"model", "tools"},
                                 {"server",
                                  {{"command",
                                    {binary().string(), "serve", "--model", "{model}", "--adapter", "{adapter}",
                                     "--port", "{port}", "--threads", "1"}},
                                   {"ready_timeout_s", 30}}}};
  auto served = gate::run_gate(*fs, *suite, target, openai, reporter);
  ASSERT_TRUE(served.ok()) << served.error().to_string();

  EXPECT_EQ(served->accuracy(), 1.0) << served->render(false);
  ASSERT_EQ(served->cases.size(), native->cases.size());
  int tool_cases = 0;
  for (size_t i = 0; i < served->cases.size(); ++i) {
    const auto& s = served->cases[i];
    const auto& n = native->cases[i];
    SCOPED_TRACE(s.prompt);
    EXPECT_EQ(s.passed, n.passed);
    EXPECT_EQ(s.called_tool, n.called_tool);
    EXPECT_EQ(s.tools_called, n.tools_called);
    if (s.called_tool) {
      ++tool_cases;
      // The server turned the <tool_call> block into structured tool_calls.
      EXPECT_EQ(s.form, "openai") << s.response;
      EXPECT_EQ(n.form, "qwen") << n.response;
    }
  }
  EXPECT_GT(tool_cases, 0);

  // The runner stopped the server: the port is free again.
  httplib::Client probe("127.0.0.1", port);
  probe.set_connection_timeout(std::chrono::milliseconds(300));
  EXPECT_FALSE(probe.Get("/health"));
}

TEST(ServeCli, BadRequestsGet400WithOpenAIStyleErrors) {
  const int port = free_port();
  ASSERT_GT(port, 0);
  Serve serve(port);
  ASSERT_GT(serve.pid(), 0);
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(std::chrono::milliseconds(300));
  ASSERT_TRUE(wait_healthy(client));

  auto models = client.Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(nlohmann::json::parse(models->body)["data"][0]["id"], "base-4bit");

  auto message_of = [&](const std::string& body) {
    auto res = client.Post("/v1/chat/completions", body, "application/json");
    EXPECT_TRUE(res);
    if (!res) return std::string();
    EXPECT_EQ(res->status, 400) << res->body;
    auto j = nlohmann::json::parse(res->body, nullptr, false);
    EXPECT_EQ(j["error"]["type"], "invalid_request_error") << res->body;
    return j["error"]["message"].get<std::string>();
  };
  EXPECT_EQ(message_of("{oops"), "the request body is not valid JSON");
  EXPECT_EQ(message_of(R"({"model": "x"})"), "'messages' is required");
  EXPECT_EQ(message_of(R"({"messages": [{"role": "user", "content": "hi"}], "stream": true})"),
            "streaming is not supported");
  EXPECT_EQ(message_of(R"({"messages": [{"role": "user", "content": "hi"}], "temperature": 1})"),
            "only 'temperature': 0 is supported (the engine decodes greedily)");

  // Still serving after the errors.
  auto ok = client.Post("/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})",
                        "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  EXPECT_EQ(nlohmann::json::parse(ok->body)["usage"]["completion_tokens"], 2);
}

TEST(ServeCli, BadModelOrAdapterExits2BeforeListening) {
  TempDir dir("serve-e2e");
  auto r = modelbuild(dir.path(), {"serve", "--model", "no-such-model", "--port", "0"});
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("no-such-model"), std::string::npos) << r.output;
  EXPECT_EQ(r.out.find("listening"), std::string::npos);
  r = modelbuild(dir.path(), {"serve", "--model", (tiny() / "models" / "base-4bit").string(), "--adapter",
                              "no-such-adapter", "--port", "0"});
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("no-such-adapter"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace mb::e2e
