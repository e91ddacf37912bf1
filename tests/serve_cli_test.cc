// `modelbuild serve` end to end: the gate's openai runner starts the real
// binary from its own `server:` config and runs the example's suite through
// it (the request, tools and tool_calls parsing paths are the real ones);
// bad requests to a running server get 400s; the event stream on the wire;
// the API key; the warning for an open bind. tests/openai_client_test.cc
// drives it with the official OpenAI client.
#include <httplib.h>

#include <chrono>
#include <thread>

#include "base/reporter.h"
#include "gate/gate.h"
#include "gate/suite.h"
#include "tests/serve_support.h"

namespace mb::e2e {
namespace {

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
  Serve serve;
  ASSERT_GT(serve.port(), 0);
  httplib::Client client("127.0.0.1", serve.port());

  auto models = client.Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(nlohmann::json::parse(models->body)["data"][0]["id"], "base-4bit");

  auto error_of = [&](const std::string& body) {
    auto res = client.Post("/v1/chat/completions", body, "application/json");
    EXPECT_TRUE(res);
    if (!res) return nlohmann::json();
    EXPECT_EQ(res->status, 400) << res->body;
    auto j = nlohmann::json::parse(res->body, nullptr, false);
    EXPECT_EQ(j["error"]["type"], "invalid_request_error") << res->body;
    return j["error"];
  };
  EXPECT_EQ(error_of("{oops")["message"], "the request body is not valid JSON");
  EXPECT_EQ(error_of(R"({"model": "x"})")["message"], "'messages' is required");
  auto n = error_of(R"({"messages": [{"role": "user", "content": "hi"}], "n": 2})");
  EXPECT_EQ(n["param"], "n");
  EXPECT_EQ(n["code"], "unsupported_parameter");
  EXPECT_EQ(error_of(R"({"messages": [{"role": "user", "content": "hi"}], "top_k": 2})")["message"],
            "unrecognized request field 'top_k'");

  // Still serving after the errors.
  auto ok = client.Post("/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})",
                        "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  EXPECT_EQ(nlohmann::json::parse(ok->body)["usage"]["completion_tokens"], 2);
}

// The wire format itself, below any client library.
TEST(ServeCli, StreamsServerSentEventsAndSurvivesAClientThatHangsUp) {
  Serve serve;
  ASSERT_GT(serve.port(), 0);
  httplib::Client client("127.0.0.1", serve.port());
  const std::string body = R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 6, "stream": true,
                               "stream_options": {"include_usage": true}})";
  auto res = client.Post("/v1/chat/completions", body, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
  EXPECT_EQ(res->get_header_value("Transfer-Encoding"), "chunked");
  EXPECT_TRUE(res->body.starts_with("data: {")) << res->body;
  EXPECT_TRUE(res->body.ends_with("\n\ndata: [DONE]\n\n")) << res->body;
  EXPECT_NE(res->body.find(R"("choices":[],"usage":{"prompt_tokens":)"), std::string::npos) << res->body;

  // A client that reads the first event and hangs up: the server stops that
  // generation (or finishes it) and goes on serving.
  httplib::Client quitter("127.0.0.1", serve.port());
  int pieces = 0;
  httplib::Headers headers;
  const std::string long_one =
      R"({"messages": [{"role": "user", "content": "Find all classes that inherit from Protocol"}],
          "max_tokens": 400, "stream": true})";
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.body = long_one;
  req.set_header("Content-Type", "application/json");
  // Hang up on the first piece: the server may batch several events, even
  // the whole reply, into one chunk, so waiting for a second piece is a race.
  req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
    ++pieces;
    return false;
  };
  auto cut = quitter.send(req);
  EXPECT_FALSE(cut);  // the receiver cancelled it
  EXPECT_EQ(pieces, 1);
  auto after = client.Post("/v1/chat/completions",
                           R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})", "application/json");
  ASSERT_TRUE(after) << serve.stderr_text();
  EXPECT_EQ(after->status, 200);
}

TEST(ServeCli, TheApiKeyFromTheEnvironmentGuardsV1ButNotHealth) {
  Serve serve({}, {{"MODELBUILD_API_KEY", "env-key"}});
  ASSERT_GT(serve.port(), 0);
  httplib::Client client("127.0.0.1", serve.port());
  auto none = client.Get("/v1/models");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  auto j = nlohmann::json::parse(none->body);
  EXPECT_EQ(j["error"]["code"], "invalid_api_key");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  auto post =
      client.Post("/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}]})", "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 401);
  auto wrong = client.Get("/v1/models", {{"Authorization", "Bearer env-kez"}});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  auto right = client.Get("/v1/models", {{"Authorization", "Bearer env-key"}});
  ASSERT_TRUE(right);
  EXPECT_EQ(right->status, 200);
  auto health = client.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  // --api-key wins over the environment.
  Serve flag({"--api-key", "flag-key"}, {{"MODELBUILD_API_KEY", "env-key"}});
  httplib::Client c2("127.0.0.1", flag.port());
  EXPECT_EQ(c2.Get("/v1/models", {{"Authorization", "Bearer env-key"}})->status, 401);
  EXPECT_EQ(c2.Get("/v1/models", {{"Authorization", "Bearer flag-key"}})->status, 200);
}

TEST(ServeCli, BindingBeyondLoopbackWithoutAKeyWarns) {
  {
    Serve loopback;
    ASSERT_GT(loopback.port(), 0);
    EXPECT_EQ(loopback.stderr_text().find("warning"), std::string::npos) << loopback.stderr_text();
  }
  {
    Serve open({"--host", "0.0.0.0"});
    ASSERT_GT(open.port(), 0);
    EXPECT_NE(open.stderr_text().find("warning: listening on 0.0.0.0 without an API key"), std::string::npos)
        << open.stderr_text();
  }
  Serve keyed({"--host", "0.0.0.0", "--api-key", "k"});
  ASSERT_GT(keyed.port(), 0);
  EXPECT_EQ(keyed.stderr_text().find("warning"), std::string::npos) << keyed.stderr_text();
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
