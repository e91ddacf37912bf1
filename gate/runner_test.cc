// Runners against real processes and a real local HTTP server.
#include "gate/runner.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "base/temp_dir.h"
#include "base/test_paths.h"
#include "gate/gate.h"
#include "inference/engine.h"

namespace mb::gate {
namespace {

Suite two_case_suite() {
  auto s = parse_suite(R"(
name: t
system: sys
tools: [{type: function, function: {name: search_code, parameters: {}}}]
cases:
  - {prompt: "Find the views", expect: tool}
  - {prompt: "What is DI?", expect: direct}
)",
                       "suite.yaml");
  EXPECT_TRUE(s.ok());
  return *s;
}

TEST(CommandRunner, RunsAProcessPerCase) {
  TempDir tmp;
  fs::path script = tmp.path() / "model.sh";
  // A fake "model": calls a tool when the prompt starts with Find.
  std::ofstream(script) << "#!/bin/sh\nif grep -q '^Find' \"$1\"; then\n"
                           "  echo '<tool_call>{\"name\": \"search_code\", \"arguments\": {}}</tool_call>'\n"
                           "else echo \"A direct answer. system=$(cat $2)\"; fi\n";
  fs::permissions(script, fs::perms::owner_all);
  auto fs = make_real_file_system();
  auto runner = make_runner(*fs, {{"type", "command"}, {"command", script.string() + " {prompt_file} {system_file}"}},
                            RunnerTarget{tmp.path(), {}, 1});
  ASSERT_TRUE(runner.ok()) << runner.error().to_string();
  NullReporter quiet;
  Suite suite = two_case_suite();
  auto report = run_gate(**runner, suite, {{"type", "command"}}, quiet, "gate");
  ASSERT_TRUE(report.ok()) << report.error().to_string();
  EXPECT_EQ(report->accuracy(), 1.0);
  EXPECT_EQ(report->cases[1].first_line(), "A direct answer. system=sys");
}

TEST(CommandRunner, AFailingCommandIsAnErrorNotAFailedCase) {
  auto fs = make_real_file_system();
  auto runner = make_runner(*fs, {{"type", "command"}, {"command", "/bin/sh -c 'exit 3'"}}, RunnerTarget{});
  ASSERT_TRUE(runner.ok());
  auto reply = (*runner)->respond(two_case_suite(), two_case_suite().cases[0]);
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(reply.error().message.find("exited with status 3"), std::string::npos);
}

// A small OpenAI-compatible server on loopback, answering like a model that
// calls tools for "Find …" prompts.
class FakeServer {
 public:
  explicit FakeServer(bool junk) {
    m_server.Post("/v1/chat/completions", [junk](const httplib::Request& req, httplib::Response& res) {
      if (junk) {
        res.set_content("{\"not\": \"a completion\"}", "application/json");
        return;
      }
      auto body = nlohmann::json::parse(req.body);
      std::string prompt = body["messages"].back()["content"];
      bool has_tools = body.contains("tools") && body["tools"].size() == 1;
      nlohmann::json msg = {{"role", "assistant"}};
      if (prompt.rfind("Find", 0) == 0 && has_tools && body["temperature"] == 0) {
        msg["content"] = nullptr;
        msg["tool_calls"] = {{{"id", "c1"},
                              {"type", "function"},
                              {"function", {{"name", "search_code"}, {"arguments", "{\"query\": \"views\"}"}}}}};
      } else {
        msg["content"] = "Dependency injection passes dependencies in.";
      }
      nlohmann::json out = {{"choices", {{{"index", 0}, {"message", msg}, {"finish_reason", "stop"}}}},
                            {"usage", {{"completion_tokens", 7}}}};
      res.set_content(out.dump(), "application/json");
    });
    m_server.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("{\"data\": []}", "application/json");
    });
    m_port = m_server.bind_to_any_port("127.0.0.1");
    m_thread = std::thread([this] { m_server.listen_after_bind(); });
    while (!m_server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ~FakeServer() {
    m_server.stop();
    m_thread.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(m_port); }

 private:
  httplib::Server m_server;
  int m_port = 0;
  std::thread m_thread;
};

TEST(OpenAIRunner, SendsToolsAndParsesToolCalls) {
  FakeServer server(false);
  auto fs = make_real_file_system();
  auto runner = make_runner(*fs, {{"type", "openai"}, {"url", server.url()}}, RunnerTarget{"m", {}, 1});
  ASSERT_TRUE(runner.ok()) << runner.error().to_string();
  NullReporter quiet;
  auto report = run_gate(**runner, two_case_suite(), {{"type", "openai"}}, quiet, "gate");
  ASSERT_TRUE(report.ok()) << report.error().to_string();
  EXPECT_EQ(report->accuracy(), 1.0);
  EXPECT_EQ(report->cases[0].form, "openai");
  EXPECT_EQ(report->cases[0].tokens, 7);
}

TEST(OpenAIRunner, MalformedReplyAndNoServerAreErrors) {
  FakeServer junk(true);
  auto fs = make_real_file_system();
  auto runner = make_runner(*fs, {{"type", "openai"}, {"url", junk.url()}}, RunnerTarget{"m", {}, 1});
  ASSERT_TRUE(runner.ok());
  auto reply = (*runner)->respond(two_case_suite(), two_case_suite().cases[0]);
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(reply.error().message.find("malformed reply"), std::string::npos);

  auto nothing = make_runner(*fs, {{"type", "openai"}, {"url", "http://127.0.0.1:1"}}, RunnerTarget{"m", {}, 1});
  ASSERT_TRUE(nothing.ok());
  auto r2 = (*nothing)->respond(two_case_suite(), two_case_suite().cases[0]);
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.error().message.find("no reply"), std::string::npos);
  EXPECT_NE(r2.error().message.find("connection refused"), std::string::npos) << r2.error().message;

  // A server that accepts the connection (the kernel does, from the listen
  // backlog) but never answers: the reply times out, and says so.
  const int sock = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(sock, 4), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(sock, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string silent = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  auto slow = make_runner(*fs, {{"type", "openai"}, {"url", silent}, {"timeout_s", 0.5}}, RunnerTarget{"m", {}, 1});
  ASSERT_TRUE(slow.ok()) << slow.error().to_string();
  auto r3 = (*slow)->respond(two_case_suite(), two_case_suite().cases[0]);
  ::close(sock);
  ASSERT_FALSE(r3.ok());
  EXPECT_NE(r3.error().message.find("timed out after 0.5 s"), std::string::npos) << r3.error().message;
}

TEST(OpenAIRunner, AServerThatNeverComesUpIsAnError) {
  auto fs = make_real_file_system();
  auto runner = make_runner(*fs,
                            {{"type", "openai"},
                             {"url", "http://127.0.0.1:1"},
                             {"server", {{"command", {"/bin/sleep", "30"}}, {"ready_timeout_s", 1}}}},
                            RunnerTarget{"m", {}, 1});
  ASSERT_FALSE(runner.ok());
  EXPECT_NE(runner.error().message.find("did not come up"), std::string::npos) << runner.error().to_string();
}

// Forwards to a real engine and keeps the prompt each generation was given.
class PromptSpy : public inference::Engine {
 public:
  explicit PromptSpy(std::unique_ptr<inference::Engine> real) : m_real(std::move(real)) {}
  std::vector<std::string> prompts;

  const inference::ModelSummary& summary() const override { return m_real->summary(); }
  double load_seconds() const override { return m_real->load_seconds(); }
  Result<std::string> render_chat(const std::vector<inference::ChatMessage>& messages,
                                  const nlohmann::ordered_json& tools) const override {
    return m_real->render_chat(messages, tools);
  }
  Result<inference::Generation> generate(const std::vector<inference::ChatMessage>& messages,
                                         const nlohmann::ordered_json& tools,
                                         const inference::GenerateOptions& options) override {
    MB_ASSIGN(std::string prompt, m_real->render_chat(messages, tools));
    prompts.push_back(prompt);
    return m_real->generate(messages, tools, options);
  }
  Result<inference::Generation> generate_from_text(std::string_view prompt,
                                                   const inference::GenerateOptions& options) override {
    return m_real->generate_from_text(prompt, options);
  }
  Result<std::vector<int32_t>> tokenize(std::string_view text) const override { return m_real->tokenize(text); }
  std::string detokenize(std::span<const int32_t> tokens) const override { return m_real->detokenize(tokens); }
  Result<std::vector<float>> logits(std::span<const int32_t> tokens) override { return m_real->logits(tokens); }
  Result<std::vector<float>> all_logits(std::span<const int32_t> tokens) override { return m_real->all_logits(tokens); }

 private:
  std::unique_ptr<inference::Engine> m_real;
};

TEST(NativeRunner, PromptIsByteIdenticalToTheTrainingFormatOfExamplesTiny) {
  // examples/tiny/generate.py trained the adapter on render_prompt(SYSTEM,
  // TOOLS, prompt): the tools block of Qwen2.5 with each tool written by
  // json.dumps(t, ensure_ascii=False) in the key order of its Python dicts
  // (type, function; name, description, parameters; type, properties,
  // required). Spelled out here from generate.py, not from the C++ output.
  const std::string expected =
      "<|im_start|>system\nYou are a coding assistant for the svcs and svcs-di Python libraries.\n\n"
      "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
      "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
      "{\"type\": \"function\", \"function\": {\"name\": \"search_code\", \"description\": \"Search the codebase "
      "for code that matches a natural-language query\", \"parameters\": {\"type\": \"object\", \"properties\": "
      "{\"query\": {\"type\": \"string\"}}, \"required\": [\"query\"]}}}\n"
      "{\"type\": \"function\", \"function\": {\"name\": \"read_file\", \"description\": \"Read a file from the "
      "repository\", \"parameters\": {\"type\": \"object\", \"properties\": {\"path\": {\"type\": \"string\"}}, "
      "\"required\": [\"path\"]}}}\n</tools>\n\n"
      "For each function call, return a json object with function name and arguments within "
      "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
      "<args-json-object>}\n</tool_call><|im_end|>\n"
      "<|im_start|>user\nWhat is dependency injection?<|im_end|>\n<|im_start|>assistant\n";
  const fs::path tiny = test::source_dir() / "examples" / "tiny";
  auto fs = make_real_file_system();
  auto suite = load_suite(*fs, tiny / "suite.yaml");
  ASSERT_TRUE(suite.ok()) << suite.error().to_string();
  suite->max_tokens = 1;  // the prompt is what this test is about
  inference::LoadOptions lo;
  lo.threads = 1;
  auto engine = inference::Engine::load(*fs, tiny / "models" / "base-4bit", lo);
  ASSERT_TRUE(engine.ok()) << engine.error().to_string();
  auto spy = std::make_unique<PromptSpy>(std::move(*engine));
  PromptSpy* seen = spy.get();
  auto runner = make_native_runner(std::move(spy));
  ASSERT_EQ(suite->cases[0].prompt, "What is dependency injection?");
  auto reply = runner->respond(*suite, suite->cases[0]);
  ASSERT_TRUE(reply.ok()) << reply.error().to_string();
  ASSERT_EQ(seen->prompts.size(), 1u);
  EXPECT_EQ(seen->prompts[0], expected);
}

}  // namespace
}  // namespace mb::gate
