#include "gate/server.h"

#include <gtest/gtest.h>

#include "base/test_paths.h"
#include "gate/classify.h"

namespace mb::gate {
namespace {

using ojson = nlohmann::ordered_json;

std::string parse_error(const std::string& body) {
  ChatRequest req;
  HttpReply error;
  EXPECT_FALSE(parse_chat_request(body, 64, &req, &error)) << body;
  EXPECT_EQ(error.status, 400);
  EXPECT_EQ(error.body["error"]["type"], "invalid_request_error");
  return error.body["error"]["message"].get<std::string>();
}

TEST(ServerRequest, RejectsBadRequestsWithNamedMessages) {
  EXPECT_EQ(parse_error("{not json"), "the request body is not valid JSON");
  EXPECT_EQ(parse_error("[1]"), "the request body must be a JSON object");
  EXPECT_EQ(parse_error("{}"), "'messages' is required");
  EXPECT_EQ(parse_error(R"({"messages": "hi"})"), "'messages' must be a non-empty list");
  EXPECT_EQ(parse_error(R"({"messages": [{"role": 1}]})"), "messages[0].role must be a string");
  EXPECT_EQ(parse_error(R"({"messages": [{"role": "robot", "content": "x"}]})"),
            "messages[0].role 'robot' is not one of system, user, assistant, tool");
  EXPECT_EQ(parse_error(R"({"messages": [{"role": "user", "content": 5}]})"),
            "messages[0].content must be a string, a list of text parts or null");
  EXPECT_EQ(parse_error(R"({"messages": [{"role": "user", "content": "x", "tool_calls": []}]})"),
            "messages[0].tool_calls is only allowed on assistant messages");
  const std::string ok = R"("messages": [{"role": "user", "content": "x"}])";
  EXPECT_EQ(parse_error("{" + ok + R"(, "temperature": 0.7})"),
            "only 'temperature': 0 is supported (the engine decodes greedily)");
  EXPECT_EQ(parse_error("{" + ok + R"(, "stream": true})"), "streaming is not supported");
  EXPECT_EQ(parse_error("{" + ok + R"(, "max_tokens": 0})"), "'max_tokens' must be a positive integer");
  EXPECT_EQ(parse_error("{" + ok + R"(, "tools": {}})"), "'tools' must be a list");
  EXPECT_EQ(parse_error("{" + ok + R"(, "stop": [1]})"), "'stop' must be a string or a list of strings");
}

TEST(ServerRequest, ParsesMessagesToolsAndOptionsKeepingToolKeyOrder) {
  const std::string body = R"({
    "messages": [
      {"role": "system", "content": "sys"},
      {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
      {"role": "assistant", "content": null,
       "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}}]},
      {"role": "tool", "content": "result"}],
    "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {}}}],
    "max_tokens": 7, "temperature": 0, "stream": false, "stop": "END"})";
  ChatRequest req;
  HttpReply error;
  ASSERT_TRUE(parse_chat_request(body, 64, &req, &error)) << error.body.dump();
  ASSERT_EQ(req.messages.size(), 4u);
  EXPECT_EQ(req.messages[1].content, "ab");
  EXPECT_EQ(req.messages[2].role, "assistant");
  EXPECT_EQ(req.messages[2].tool_calls[0]["function"]["name"], "f");
  EXPECT_EQ(req.messages[3].role, "tool");
  // Not sorted: "type" stays before "function", "name" before "description".
  EXPECT_EQ(req.tools.dump(), R"([{"type":"function","function":{"name":"f","description":"d","parameters":{}}}])");
  EXPECT_EQ(req.max_tokens, 7);
  EXPECT_EQ(req.stop, std::vector<std::string>{"END"});

  ASSERT_TRUE(parse_chat_request(R"({"messages": [{"role": "user", "content": "x"}]})", 64, &req, &error));
  EXPECT_EQ(req.max_tokens, 64);
  EXPECT_TRUE(req.tools.is_null());
}

TEST(ServerResponse, QwenToolCallBlocksBecomeOpenAIToolCalls) {
  inference::Generation g;
  g.text =
      "Let me look.\n<tool_call>\n{\"name\": \"search_code\", \"arguments\": {\"query\": \"q\", \"k\": "
      "2}}\n</tool_call>";
  g.prompt_tokens = 10;
  g.completion_tokens = 5;
  g.stop_reason = "eos";
  ojson body = completion_body(g, "m");
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["model"], "m");
  const auto& choice = body["choices"][0];
  EXPECT_EQ(choice["index"], 0);
  EXPECT_EQ(choice["finish_reason"], "tool_calls");
  EXPECT_EQ(choice["message"]["role"], "assistant");
  EXPECT_EQ(choice["message"]["content"], "Let me look.");
  const auto& call = choice["message"]["tool_calls"][0];
  EXPECT_EQ(call["type"], "function");
  EXPECT_TRUE(call["id"].is_string());
  EXPECT_EQ(call["function"]["name"], "search_code");
  EXPECT_EQ(call["function"]["arguments"], R"({"query":"q","k":2})");  // a string, keys in model order
  EXPECT_EQ(body["usage"]["total_tokens"], 15);

  g.text = "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>";
  EXPECT_TRUE(completion_body(g, "m")["choices"][0]["message"]["content"].is_null());
}

TEST(ServerResponse, PlainTextAndLengthFinish) {
  inference::Generation g;
  g.text = "Dependency injection is";
  g.stop_reason = "max_tokens";
  ojson body = completion_body(g, "m");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(body["choices"][0]["message"]["content"], "Dependency injection is");
  EXPECT_FALSE(body["choices"][0]["message"].contains("tool_calls"));
  g.stop_reason = "eos";
  EXPECT_EQ(completion_body(g, "m")["choices"][0]["finish_reason"], "stop");
  // A malformed block is not a call: the text stays as the content.
  g.text = "<tool_call>{oops}</tool_call>";
  body = completion_body(g, "m");
  EXPECT_FALSE(body["choices"][0]["message"].contains("tool_calls"));
  EXPECT_EQ(body["choices"][0]["message"]["content"], g.text);
}

class TinyServer : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path tiny = test::source_dir() / "examples" / "tiny";
    auto fs = make_real_file_system();
    inference::LoadOptions lo;
    lo.threads = 1;
    lo.adapters.push_back(tiny / "adapters" / "tools-lora");
    auto engine = inference::Engine::load(*fs, tiny / "models" / "base-4bit", lo);
    ASSERT_TRUE(engine.ok()) << engine.error().to_string();
    server = std::make_unique<ChatServer>(std::move(*engine), "tiny", 48);
  }
  std::unique_ptr<ChatServer> server;
};

const char* kTools =
    R"([{"type": "function", "function": {"name": "search_code", "description": "Search the codebase for code that )"
    R"(matches a natural-language query", "parameters": {"type": "object", "properties": {"query": {"type": )"
    R"("string"}}, "required": ["query"]}}}])";

TEST_F(TinyServer, ToolQuestionGetsToolCallsConceptQuestionGetsText) {
  const std::string sys =
      R"({"role": "system", "content": "You are a coding assistant for the svcs and svcs-di Python libraries."})";
  auto tool = server->chat_completions(
      std::string(R"({"messages": [)") + sys +
      R"(, {"role": "user", "content": "Find all classes that inherit from Protocol"}], "tools": )" + kTools + "}");
  ASSERT_EQ(tool.status, 200) << tool.body.dump();
  const auto& m = tool.body["choices"][0]["message"];
  ASSERT_TRUE(m.contains("tool_calls")) << tool.body.dump();
  EXPECT_EQ(m["tool_calls"][0]["function"]["name"], "search_code");
  EXPECT_EQ(tool.body["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_GT(tool.body["usage"]["prompt_tokens"].get<int>(), 0);

  auto direct = server->chat_completions(
      std::string(R"({"messages": [)") + sys +
      R"(, {"role": "user", "content": "What is dependency injection?"}], "tools": )" + kTools + "}");
  ASSERT_EQ(direct.status, 200) << direct.body.dump();
  EXPECT_FALSE(direct.body["choices"][0]["message"].contains("tool_calls")) << direct.body.dump();
  EXPECT_TRUE(direct.body["choices"][0]["message"]["content"].is_string());
}

TEST_F(TinyServer, PromptLongerThanTheContextIs400) {
  std::string lots;
  for (int i = 0; i < 600; ++i) lots += "word ";
  auto r = server->chat_completions(R"({"messages": [{"role": "user", "content": ")" + lots + R"("}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body["error"]["message"].get<std::string>().find("does not fit the context of 512 tokens"),
            std::string::npos)
      << r.body.dump();
}

TEST_F(TinyServer, ModelsAndHealth) {
  EXPECT_EQ(server->health().body["status"], "ok");
  EXPECT_EQ(server->models().body["data"][0]["id"], "tiny");
}

}  // namespace
}  // namespace mb::gate
