#include "gate/server.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <regex>
#include <thread>

#include "base/test_paths.h"

namespace mb::gate {
namespace {

using ojson = nlohmann::ordered_json;

TEST(ServerAuth, BearerTokenMustMatchExactly) {
  EXPECT_TRUE(bearer_matches("Bearer sekrit", "sekrit"));
  EXPECT_FALSE(bearer_matches("Bearer sekrit2", "sekrit"));
  EXPECT_FALSE(bearer_matches("Bearer sekri", "sekrit"));
  EXPECT_FALSE(bearer_matches("bearer sekrit", "sekrit"));
  EXPECT_FALSE(bearer_matches("sekrit", "sekrit"));
  EXPECT_FALSE(bearer_matches("", "sekrit"));
  EXPECT_FALSE(bearer_matches("Bearer ", ""));  // an empty key never matches
  HttpReply r = unauthorized_reply();
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body["error"]["code"], "invalid_api_key");
  EXPECT_EQ(r.body["error"]["type"], "invalid_request_error");
}

TEST(ServerErrors, RequestErrorsNameTheFieldAndUnsupportedOnesSaySo) {
  HttpReply r = request_error_reply(Error{Errc::kUnsupported, "n", "'n' is not supported"});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body.dump(), R"({"error":{"message":"'n' is not supported","type":"invalid_request_error","param":"n",)"
                           R"("code":"unsupported_parameter"}})");
  r = request_error_reply(Error{Errc::kInvalidInput, "", "the request body is not valid JSON"});
  EXPECT_TRUE(r.body["error"]["param"].is_null());
  EXPECT_TRUE(r.body["error"]["code"].is_null());
}

// An engine whose generation the test steps through: generate() emits one
// piece of text, then waits until the test lets it go on.
class SteppedEngine final : public inference::Engine {
 public:
  std::mutex mutex;
  std::condition_variable cv;
  bool release = false;
  bool cancelled_seen = false;

  const inference::ModelSummary& summary() const override { return m_summary; }
  double load_seconds() const override { return 0; }
  Result<std::string> render_chat(const std::vector<inference::ChatMessage>&, const ojson&) const override {
    return std::string("prompt");
  }
  Result<inference::Generation> generate(const std::vector<inference::ChatMessage>&, const ojson&,
                                         const inference::GenerateOptions& o) override {
    inference::Generation g;
    g.prompt_tokens = 1;
    o.on_text("Hello");
    const bool go_on = o.on_token(1);
    {
      // The timeout only breaks the deadlock a buffering server would cause
      // (it waits for the end before it sends anything); the test then fails
      // on what it received, not on time.
      std::unique_lock<std::mutex> lock(mutex);
      cv.wait_for(lock, std::chrono::seconds(20), [&] { return release; });
    }
    if (!go_on || !o.on_token(2)) {
      cancelled_seen = true;
      g.stop_reason = "cancelled";
      g.text = "Hello";
      return g;
    }
    o.on_text(" world");
    g.text = "Hello world";
    g.completion_tokens = 2;
    g.stop_reason = "eos";
    return g;
  }
  Result<inference::Generation> generate_from_text(std::string_view, const inference::GenerateOptions&) override {
    return Error{Errc::kUnsupported, "", "not in this test"};
  }
  Result<std::vector<int32_t>> tokenize(std::string_view) const override { return std::vector<int32_t>{}; }
  std::string detokenize(std::span<const int32_t>) const override { return "x"; }
  Result<std::vector<float>> logits(std::span<const int32_t>) override { return std::vector<float>{}; }
  Result<std::vector<float>> all_logits(std::span<const int32_t>) override { return std::vector<float>{}; }

  void go() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      release = true;
    }
    cv.notify_all();
  }

 private:
  inference::ModelSummary m_summary{"fake", 0, 1, 1, 4, "f32", 0};
};

TEST(ServerStream, TextGoesOutBeforeTheGenerationEnds) {
  auto engine = std::make_unique<SteppedEngine>();
  SteppedEngine* e = engine.get();
  ChatServer server(std::move(engine), "fake", 8);
  ChatServer::Started s = server.start(R"({"messages": [{"role": "user", "content": "x"}], "stream": true})");
  ASSERT_FALSE(s.error);
  EXPECT_FALSE(s.call->wait_started());
  std::string first;
  // The generation is still waiting for go(): this is the first token's text
  // alone.
  EXPECT_TRUE(s.call->next_events(first));
  EXPECT_NE(first.find(R"("delta":{"role":"assistant","content":""})"), std::string::npos) << first;
  EXPECT_NE(first.find(R"("delta":{"content":"Hello"})"), std::string::npos) << first;
  EXPECT_EQ(first.find("world"), std::string::npos) << first;
  e->go();
  std::string rest;
  while (s.call->next_events(rest)) {
  }
  EXPECT_NE(rest.find(R"("delta":{"content":" world"})"), std::string::npos) << rest;
  EXPECT_TRUE(rest.ends_with("data: [DONE]\n\n"));
}

TEST(ServerStream, ACancelledCallStopsItsGeneration) {
  auto engine = std::make_unique<SteppedEngine>();
  SteppedEngine* e = engine.get();
  ChatServer server(std::move(engine), "fake", 8);
  ChatServer::Started s = server.start(R"({"messages": [{"role": "user", "content": "x"}], "stream": true})");
  ASSERT_FALSE(s.error);
  EXPECT_FALSE(s.call->wait_started());
  s.call->cancel();  // what the HTTP side does when the client hangs up
  e->go();
  std::string sse;
  while (s.call->next_events(sse)) {
  }
  EXPECT_TRUE(e->cancelled_seen);
  EXPECT_EQ(sse.find("[DONE]"), std::string::npos) << sse;
}

TEST(ServerStream, StoppingTheServerEndsQueuedCallsWith503) {
  auto engine = std::make_unique<SteppedEngine>();
  SteppedEngine* e = engine.get();
  ChatServer server(std::move(engine), "fake", 8);
  const std::string body = R"({"messages": [{"role": "user", "content": "x"}]})";
  ChatServer::Started running = server.start(body);
  ChatServer::Started queued = server.start(body);
  ASSERT_FALSE(running.error || queued.error);
  EXPECT_FALSE(running.call->wait_started());
  server.stop();
  e->go();
  EXPECT_EQ(running.call->wait_reply().status, 503);
  EXPECT_EQ(queued.call->wait_reply().status, 503);
  EXPECT_EQ(server.start(body).error->status, 503);
}

const char* kSystem = "You are a coding assistant for the svcs and svcs-di Python libraries.";
const char* kTools =
    R"([{"type": "function", "function": {"name": "search_code", "description": "Search the codebase for code that )"
    R"(matches a natural-language query", "parameters": {"type": "object", "properties": {"query": {"type": )"
    R"("string"}}, "required": ["query"]}}}, {"type": "function", "function": {"name": "read_file", "description": )"
    R"("Read a file from the repository", "parameters": {"type": "object", "properties": {"path": {"type": )"
    R"("string"}}, "required": ["path"]}}}])";

// A request body with the example's system prompt and tools.
std::string ask(const std::string& prompt, const std::string& extra = "") {
  ojson body = {
      {"messages", ojson::array({{{"role", "system"}, {"content", kSystem}}, {{"role", "user"}, {"content", prompt}}})},
      {"tools", ojson::parse(kTools)}};
  std::string s = body.dump();
  if (!extra.empty()) s = s.substr(0, s.size() - 1) + ", " + extra + "}";
  return s;
}

// The reply with what differs between two runs (ids, time) taken out.
ojson comparable(ojson body) {
  body.erase("id");
  body.erase("created");
  if (body["choices"][0]["message"].contains("tool_calls"))
    for (auto& c : body["choices"][0]["message"]["tool_calls"]) c.erase("id");
  return body;
}

class TinyServer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const fs::path tiny = test::source_dir() / "examples" / "tiny";
    auto fs = make_real_file_system();
    inference::LoadOptions lo;
    lo.threads = 1;
    lo.adapters.push_back(tiny / "adapters" / "tools-lora");
    auto engine = inference::Engine::load(*fs, tiny / "models" / "base-4bit", lo);
    ASSERT_TRUE(engine.ok()) << engine.error().to_string();
    server = new ChatServer(std::move(*engine), "tiny", 48);
  }
  static void TearDownTestSuite() {
    delete server;
    server = nullptr;
  }

  static HttpReply whole(const std::string& body) { return server->chat_completions(body); }

  // A streamed reply reassembled the way OpenAI's client helpers do it.
  static ojson streamed(const std::string& body, std::string* raw = nullptr) {
    ChatServer::Started s = server->start(body);
    EXPECT_FALSE(s.error) << s.error->body.dump();
    if (s.error) return {};
    EXPECT_TRUE(s.call->stream());
    EXPECT_FALSE(s.call->wait_started());
    std::string sse;
    while (s.call->next_events(sse)) {
    }
    if (raw) *raw = sse;
    ojson message = {{"role", nullptr}, {"content", nullptr}, {"refusal", nullptr}};
    ojson out = {{"object", "chat.completion"}};
    for (size_t pos = 0; pos < sse.size();) {
      size_t end = sse.find("\n\n", pos);
      std::string data = sse.substr(pos + 6, end - pos - 6);
      pos = end + 2;
      if (data == "[DONE]") break;
      ojson c = ojson::parse(data);
      out["model"] = c["model"];
      if (c.contains("usage") && !c["usage"].is_null()) out["usage"] = c["usage"];
      for (auto& ch : c["choices"]) {
        const ojson& d = ch["delta"];
        if (d.contains("role")) message["role"] = d["role"];
        if (d.contains("content") && !d["content"].get<std::string>().empty())
          message["content"] = message["content"].is_null()
                                   ? d["content"].get<std::string>()
                                   : message["content"].get<std::string>() + d["content"].get<std::string>();
        for (const auto& tc : d.value("tool_calls", ojson::array())) {
          auto& calls = message["tool_calls"];
          const size_t i = tc["index"].get<size_t>();
          if (calls.size() <= i)
            calls.push_back({{"type", tc["type"]}, {"function", tc["function"]}});
          else
            calls[i]["function"]["arguments"] =
                calls[i]["function"]["arguments"].get<std::string>() + tc["function"]["arguments"].get<std::string>();
        }
        if (!ch["finish_reason"].is_null()) out["finish_reason"] = ch["finish_reason"];
      }
    }
    out["message"] = message;
    return out;
  }

  static ChatServer* server;
};
ChatServer* TinyServer::server = nullptr;

TEST_F(TinyServer, ToolQuestionGetsToolCallsConceptQuestionGetsText) {
  HttpReply tool = whole(ask("Find all classes that inherit from Protocol"));
  ASSERT_EQ(tool.status, 200) << tool.body.dump();
  const auto& m = tool.body["choices"][0]["message"];
  ASSERT_TRUE(m.contains("tool_calls")) << tool.body.dump();
  EXPECT_EQ(m["tool_calls"][0]["function"]["name"], "search_code");
  EXPECT_EQ(ojson::parse(m["tool_calls"][0]["function"]["arguments"].get<std::string>())["query"],
            "Find all classes that inherit from Protocol");
  EXPECT_EQ(tool.body["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_GT(tool.body["usage"]["prompt_tokens"].get<int>(), 0);

  HttpReply direct = whole(ask("What is dependency injection?"));
  ASSERT_EQ(direct.status, 200) << direct.body.dump();
  EXPECT_FALSE(direct.body["choices"][0]["message"].contains("tool_calls")) << direct.body.dump();
  EXPECT_TRUE(direct.body["choices"][0]["message"]["content"].is_string());
  EXPECT_EQ(direct.body["choices"][0]["finish_reason"], "stop");
}

TEST_F(TinyServer, AStreamReassemblesToTheWholeReply) {
  for (const char* prompt : {"Find all classes that inherit from Protocol", "What is dependency injection?"}) {
    SCOPED_TRACE(prompt);
    ojson w = whole(ask(prompt)).body;
    std::string raw;
    ojson s = streamed(ask(prompt, R"("stream": true, "stream_options": {"include_usage": true})"), &raw);
    EXPECT_EQ(s["finish_reason"], w["choices"][0]["finish_reason"]);
    EXPECT_EQ(s["usage"], w["usage"]);
    ojson wm = w["choices"][0]["message"];
    if (wm.contains("tool_calls"))
      for (auto& c : wm["tool_calls"]) c.erase("id");
    EXPECT_EQ(s["message"], wm) << raw;
    EXPECT_TRUE(raw.ends_with("data: [DONE]\n\n"));
    // More than the first, last and usage chunks: it really streamed.
    EXPECT_GT(std::count(raw.begin(), raw.end(), '\n'), 2 * 5);
  }
}

// docs/formats/openai-sse.md, worked example 1, byte for byte (but for the
// id and the time, which differ per request).
TEST_F(TinyServer, TheDocumentedStreamIsWhatIsSent) {
  std::string sse;
  streamed(R"({"messages":[{"role":"user","content":"What is dependency injection?"}],"max_tokens":4,"stream":true})",
           &sse);
  sse = std::regex_replace(sse, std::regex(R"("id":"chatcmpl-[0-9a-f]+","object")"), R"("id":"ID","object")");
  sse = std::regex_replace(sse, std::regex(R"("created":[0-9]+)"), R"("created":T)");
  std::string expected;
  const char* head =
      R"(data: {"id":"ID","object":"chat.completion.chunk","created":T,"model":"tiny","choices":[{"index":0,"delta":)";
  for (const char* delta : {R"({"role":"assistant","content":""})", R"({"content":"D"})", R"({"content":"e"})",
                            R"({"content":"pen"})", R"({"content":"denc"})"})
    expected += std::string(head) + delta + R"(,"logprobs":null,"finish_reason":null}]})" + "\n\n";
  expected += std::string(head) + R"({},"logprobs":null,"finish_reason":"length"}]})" + "\n\ndata: [DONE]\n\n";
  EXPECT_EQ(sse, expected);
}

TEST_F(TinyServer, ToolChoiceNoneHidesTheToolsAndParsesNoCall) {
  HttpReply with = whole(ask("Find all classes that inherit from Protocol"));
  HttpReply none = whole(ask("Find all classes that inherit from Protocol", R"("tool_choice": "none")"));
  ASSERT_EQ(none.status, 200) << none.body.dump();
  EXPECT_FALSE(none.body["choices"][0]["message"].contains("tool_calls")) << none.body.dump();
  EXPECT_NE(none.body["choices"][0]["finish_reason"], "tool_calls");
  // The tools were not in the prompt.
  EXPECT_LT(none.body["usage"]["prompt_tokens"].get<int>(), with.body["usage"]["prompt_tokens"].get<int>() - 50);
}

TEST_F(TinyServer, ToolChoiceRequiredForcesACallWhereTheModelWouldAnswer) {
  HttpReply r = whole(ask("What is dependency injection?", R"("tool_choice": "required")"));
  ASSERT_EQ(r.status, 200) << r.body.dump();
  const auto& m = r.body["choices"][0]["message"];
  ASSERT_TRUE(m.contains("tool_calls")) << r.body.dump();
  const std::string name = m["tool_calls"][0]["function"]["name"];
  EXPECT_TRUE(name == "search_code" || name == "read_file") << name;
  EXPECT_EQ(r.body["choices"][0]["finish_reason"], "tool_calls");
  // The model still writes the arguments: they are JSON.
  EXPECT_TRUE(ojson::parse(m["tool_calls"][0]["function"]["arguments"].get<std::string>(), nullptr, false).is_object())
      << r.body.dump();
}

TEST_F(TinyServer, ANamedToolChoiceForcesThatTool) {
  const std::string named = R"("tool_choice": {"type": "function", "function": {"name": "read_file"}})";
  for (const char* prompt : {"Find all classes that inherit from Protocol", "What is dependency injection?"}) {
    SCOPED_TRACE(prompt);
    HttpReply r = whole(ask(prompt, named));
    ASSERT_EQ(r.status, 200) << r.body.dump();
    const auto& m = r.body["choices"][0]["message"];
    ASSERT_TRUE(m.contains("tool_calls")) << r.body.dump();
    EXPECT_EQ(m["tool_calls"][0]["function"]["name"], "read_file");
    ojson s = streamed(ask(prompt, named + R"(, "stream": true)"));
    EXPECT_EQ(s["message"]["tool_calls"][0]["function"], m["tool_calls"][0]["function"]);
  }
}

TEST_F(TinyServer, StopSeedAndTemperature) {
  HttpReply full = whole(ask("What is dependency injection?"));
  const std::string text = full.body["choices"][0]["message"]["content"];
  HttpReply cut = whole(ask("What is dependency injection?", R"("stop": [" pattern"])"));
  EXPECT_EQ(cut.body["choices"][0]["message"]["content"], text.substr(0, text.find(" pattern")));
  // temperature 0 is greedy whatever the seed; a seeded sample repeats.
  EXPECT_EQ(comparable(whole(ask("What is dependency injection?", R"("temperature": 0, "seed": 5)")).body),
            comparable(full.body));
  const std::string hot = R"("temperature": 1.5, "seed": 1234, "tool_choice": "none")";
  HttpReply a = whole(ask("What is dependency injection?", hot));
  HttpReply b = whole(ask("What is dependency injection?", hot));
  ASSERT_EQ(a.status, 200) << a.body.dump();
  EXPECT_EQ(comparable(a.body), comparable(b.body));
  bool differs = false;
  for (int seed = 1; seed < 6 && !differs; ++seed) {
    HttpReply c = whole(ask("What is dependency injection?", fmt::format(R"("temperature": 1.5, "seed": {})", seed)));
    differs = c.body["choices"][0]["message"] != a.body["choices"][0]["message"];
  }
  EXPECT_TRUE(differs);
}

TEST_F(TinyServer, ConcurrentRequestsGetTheRepliesTheyGetAlone) {
  const std::vector<std::string> bodies = {
      ask("Find all classes that inherit from Protocol"),
      ask("What is dependency injection?"),
      ask("Show me a basic injection example", R"("stream": true)"),
      ask("What is the difference between Registry and Container?", R"("max_tokens": 9)"),
      ask("When should I use svcs vs a DI framework?", R"("tool_choice": "required")"),
      ask("hi", R"("tool_choice": "none")"),
      ask("What is dependency injection?", R"("temperature": 1.0, "seed": 77)"),
      ask("Find all classes that inherit from Protocol", R"("stream": true, "tool_choice": "none")"),
  };
  auto reply_of = [&](const std::string& body) {
    ChatServer::Started s = server->start(body);
    if (s.error) return s.error->body;
    if (!s.call->stream()) return comparable(s.call->wait_reply().body);
    std::string sse;
    while (s.call->next_events(sse)) {
    }
    // The events without ids and times.
    std::string out;
    for (size_t pos = 0; pos < sse.size();) {
      size_t end = sse.find("\n\n", pos);
      std::string data = sse.substr(pos + 6, end - pos - 6);
      pos = end + 2;
      if (data == "[DONE]") continue;
      ojson c = ojson::parse(data);
      c.erase("id");
      c.erase("created");
      if (c["choices"][0]["delta"].contains("tool_calls")) c["choices"][0]["delta"]["tool_calls"][0].erase("id");
      out += c.dump() + "\n";
    }
    return ojson(out);
  };
  std::vector<ojson> alone;
  for (const auto& b : bodies) alone.push_back(reply_of(b));
  std::vector<ojson> together(bodies.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < bodies.size(); ++i) threads.emplace_back([&, i] { together[i] = reply_of(bodies[i]); });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < bodies.size(); ++i) EXPECT_EQ(together[i], alone[i]) << bodies[i];
}

TEST_F(TinyServer, ACancelledStreamStopsAndTheNextRequestIsUnharmed) {
  HttpReply before = whole(ask("Show me a basic injection example"));
  ChatServer::Started s = server->start(ask("What is dependency injection?", R"("stream": true, "max_tokens": 48)"));
  ASSERT_FALSE(s.error);
  s.call->cancel();
  std::string sse;
  while (s.call->next_events(sse)) {
  }
  EXPECT_NE(sse.find("\"error\""), std::string::npos) << sse;  // cancelled: no [DONE]
  EXPECT_EQ(comparable(whole(ask("Show me a basic injection example")).body), comparable(before.body));
}

TEST_F(TinyServer, PromptLongerThanTheContextIs400) {
  std::string lots;
  for (int i = 0; i < 600; ++i) lots += "word ";
  HttpReply r = whole(R"({"messages": [{"role": "user", "content": ")" + lots + R"("}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body["error"]["message"].get<std::string>().find("does not fit the context of 512 tokens"),
            std::string::npos)
      << r.body.dump();
  // The same for a stream: refused before it starts.
  ChatServer::Started s =
      server->start(R"({"messages": [{"role": "user", "content": ")" + lots + R"("}], "stream": true})");
  ASSERT_FALSE(s.error);
  auto e = s.call->wait_started();
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, 400);
}

TEST_F(TinyServer, ModelsAndHealth) {
  EXPECT_EQ(server->health().body["status"], "ok");
  EXPECT_EQ(server->models().body["data"][0]["id"], "tiny");
}

}  // namespace
}  // namespace mb::gate
