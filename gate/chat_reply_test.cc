#include "gate/chat_reply.h"

#include <gtest/gtest.h>

namespace mb::gate {
namespace {

using ojson = nlohmann::ordered_json;

// The JSON objects of "data: {...}\n\n" events, and whether [DONE] ended them.
std::vector<ojson> events_of(const std::string& sse, bool* done) {
  std::vector<ojson> out;
  *done = false;
  size_t pos = 0;
  while (pos < sse.size()) {
    size_t end = sse.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos) << "an event without its blank line: " << sse.substr(pos);
    if (end == std::string::npos) break;
    const std::string line = sse.substr(pos, end - pos);
    EXPECT_TRUE(line.starts_with("data: ")) << line;
    EXPECT_FALSE(*done) << "an event after [DONE]";
    if (line == "data: [DONE]")
      *done = true;
    else
      out.push_back(ojson::parse(line.substr(6)));
    pos = end + 2;
  }
  return out;
}

TEST(ChatReply, QwenToolCallBlocksBecomeOpenAIToolCalls) {
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
  EXPECT_TRUE(body["id"].get<std::string>().starts_with("chatcmpl-"));
  const auto& choice = body["choices"][0];
  EXPECT_EQ(choice["index"], 0);
  EXPECT_EQ(choice["finish_reason"], "tool_calls");
  EXPECT_TRUE(choice["logprobs"].is_null());
  EXPECT_EQ(choice["message"]["role"], "assistant");
  EXPECT_EQ(choice["message"]["content"], "Let me look.");
  const auto& call = choice["message"]["tool_calls"][0];
  EXPECT_EQ(call["type"], "function");
  EXPECT_TRUE(call["id"].get<std::string>().starts_with("call_"));
  EXPECT_EQ(call["function"]["name"], "search_code");
  EXPECT_EQ(call["function"]["arguments"], R"({"query":"q","k":2})");  // a string, keys in model order
  EXPECT_EQ(body["usage"]["total_tokens"], 15);

  g.text = "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>";
  EXPECT_TRUE(completion_body(g, "m")["choices"][0]["message"]["content"].is_null());
  // tool_choice "none": no call is parsed.
  ToolCallStreamOptions none;
  none.parse_calls = false;
  body = completion_body(g, "m", none);
  EXPECT_EQ(body["choices"][0]["message"]["content"], g.text);
  EXPECT_FALSE(body["choices"][0]["message"].contains("tool_calls"));
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
}

TEST(ChatReply, PlainTextAndFinishReasons) {
  inference::Generation g;
  g.text = "Dependency injection is";
  g.stop_reason = "max_tokens";
  ojson body = completion_body(g, "m");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(body["choices"][0]["message"]["content"], "Dependency injection is");
  EXPECT_FALSE(body["choices"][0]["message"].contains("tool_calls"));
  g.stop_reason = "eos";
  EXPECT_EQ(completion_body(g, "m")["choices"][0]["finish_reason"], "stop");
  g.stop_reason = "stop_string";
  EXPECT_EQ(completion_body(g, "m")["choices"][0]["finish_reason"], "stop");
  // A malformed block is not a call: the text stays as the content.
  g.text = "<tool_call>{oops}</tool_call>";
  body = completion_body(g, "m");
  EXPECT_FALSE(body["choices"][0]["message"].contains("tool_calls"));
  EXPECT_EQ(body["choices"][0]["message"]["content"], g.text);

  EXPECT_EQ(finish_reason("max_tokens", 1, /*call_open=*/true), "length");
  EXPECT_EQ(finish_reason("max_tokens", 1, false), "tool_calls");
  EXPECT_EQ(finish_reason("cancelled", 1, false), "tool_calls");
}

TEST(ChatReply, StreamedChunksAsOpenAISendsThem) {
  CompletionInfo info{"chatcmpl-abc", 1700000000, "m"};
  ChunkEncoder enc(info, /*include_usage=*/true);
  std::string sse = enc.begin();
  sse += enc.event({ReplyEvent::Kind::kContent, 0, "Hi"});
  sse += enc.event({ReplyEvent::Kind::kToolCall, 0, "f"});
  sse += enc.event({ReplyEvent::Kind::kToolArguments, 0, "{\"q\":"});
  sse += enc.end("tool_calls", {3, 4});
  bool done = false;
  std::vector<ojson> ev = events_of(sse, &done);
  EXPECT_TRUE(done);
  ASSERT_EQ(ev.size(), 6u);
  for (const ojson& c : ev) {
    EXPECT_EQ(c["id"], "chatcmpl-abc");
    EXPECT_EQ(c["object"], "chat.completion.chunk");
    EXPECT_EQ(c["created"], 1700000000);
    EXPECT_EQ(c["model"], "m");
    EXPECT_TRUE(c.contains("usage"));
  }
  EXPECT_EQ(ev[0]["choices"][0]["delta"], (ojson{{"role", "assistant"}, {"content", ""}}));
  EXPECT_TRUE(ev[0]["choices"][0]["finish_reason"].is_null());
  EXPECT_TRUE(ev[0]["usage"].is_null());
  EXPECT_EQ(ev[1]["choices"][0]["delta"], (ojson{{"content", "Hi"}}));
  EXPECT_EQ(ev[2]["choices"][0]["delta"]["tool_calls"].dump(),
            R"([{"index":0,"id":"call_abc_0","type":"function","function":{"name":"f","arguments":""}}])");
  EXPECT_EQ(ev[3]["choices"][0]["delta"]["tool_calls"].dump(), R"([{"index":0,"function":{"arguments":"{\"q\":"}}])");
  EXPECT_EQ(ev[4]["choices"][0]["delta"], ojson::object());
  EXPECT_EQ(ev[4]["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_TRUE(ev[5]["choices"].empty());
  EXPECT_EQ(ev[5]["usage"].dump(), R"({"prompt_tokens":3,"completion_tokens":4,"total_tokens":7})");

  // Without include_usage there is no usage at all.
  ChunkEncoder plain(info, false);
  ev = events_of(plain.begin() + plain.end("stop", {1, 1}), &done);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_FALSE(ev[0].contains("usage"));
  EXPECT_EQ(ev[1]["choices"][0]["finish_reason"], "stop");

  ev = events_of(sse_error("boom", "server_error"), &done);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["error"]["message"], "boom");
  EXPECT_FALSE(done);
}

TEST(ChatReply, IdsAreUnique) {
  CompletionInfo a = new_completion("m"), b = new_completion("m");
  EXPECT_NE(a.id, b.id);
  EXPECT_NE(a.call_id(0), a.call_id(1));
  EXPECT_NE(a.call_id(0), b.call_id(0));
}

}  // namespace
}  // namespace mb::gate
