#include "gate/chat_request.h"

#include <gtest/gtest.h>

namespace mb::gate {
namespace {

const std::string kOk = R"("messages": [{"role": "user", "content": "x"}])";
const std::string kTools =
    R"("tools": [{"type": "function", "function": {"name": "f", "parameters": {}}},
                 {"type": "function", "function": {"name": "g-2"}}])";

Error error_of(const std::string& body) {
  auto r = parse_chat_request(body, 64);
  EXPECT_FALSE(r.ok()) << body;
  return r.ok() ? Error{} : r.error();
}
std::string message_of(const std::string& body) { return error_of(body).message; }

ChatRequest parse_ok(const std::string& body) {
  auto r = parse_chat_request(body, 64);
  EXPECT_TRUE(r.ok()) << body << ": " << (r.ok() ? "" : r.error().to_string());
  return r.ok() ? *r : ChatRequest{};
}

TEST(ChatRequest, RejectsBadRequestsWithNamedMessages) {
  EXPECT_EQ(message_of("{not json"), "the request body is not valid JSON");
  EXPECT_EQ(message_of("[1]"), "the request body must be a JSON object");
  EXPECT_EQ(message_of("{}"), "'messages' is required");
  EXPECT_EQ(message_of(R"({"messages": "hi"})"), "'messages' must be a non-empty list");
  EXPECT_EQ(message_of(R"({"messages": [{"role": 1}]})"), "messages[0].role must be a string");
  EXPECT_EQ(message_of(R"({"messages": [{"role": "robot", "content": "x"}]})"),
            "messages[0].role 'robot' is not one of system, developer, user, assistant, tool");
  EXPECT_EQ(message_of(R"({"messages": [{"role": "user", "content": 5}]})"),
            "messages[0].content must be a string, a list of text parts or null");
  EXPECT_EQ(message_of(R"({"messages": [{"role": "user", "content": "x", "tool_calls": []}]})"),
            "messages[0].tool_calls is only allowed on assistant messages");
  EXPECT_EQ(message_of("{" + kOk + R"(, "max_tokens": 0})"), "'max_tokens' must be a positive integer");
  EXPECT_EQ(message_of("{" + kOk + R"(, "tools": {}})"), "'tools' must be a list");
  EXPECT_EQ(message_of("{" + kOk + R"(, "stop": [1]})"), "'stop' must be a string or a list of strings");
  EXPECT_EQ(message_of("{" + kOk + R"(, "temperature": 2.5})"), "'temperature' must be a number from 0 to 2");
  EXPECT_EQ(message_of("{" + kOk + R"(, "stream": "yes"})"), "'stream' must be a boolean");
  EXPECT_EQ(error_of("{" + kOk + R"(, "max_tokens": 0})").where, "max_tokens");
}

TEST(ChatRequest, UnknownFieldsAreRefusedAsOpenAIRefusesThem) {
  Error e = error_of("{" + kOk + R"(, "top_k": 40})");
  EXPECT_EQ(e.code, Errc::kInvalidInput);
  EXPECT_EQ(e.where, "top_k");
  EXPECT_EQ(e.message, "unrecognized request field 'top_k'");
  // Ignored identifiers and metadata are fine, and so is null for anything known.
  parse_ok("{" + kOk + R"(, "model": "gpt-4o", "user": "u1", "metadata": {"a": "b"}, "service_tier": "auto",
                          "n": null, "logprobs": null, "seed": null})");
}

TEST(ChatRequest, UnsupportedFieldsAreRefusedUnlessTheyAskForTheDefault) {
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"n", "2"},
      {"logprobs", "true"},
      {"top_logprobs", "3"},
      {"frequency_penalty", "0.5"},
      {"presence_penalty", "-1"},
      {"logit_bias", R"({"50256": -100})"},
      {"response_format", R"({"type": "json_object"})"},
      {"response_format", R"({"type": "json_schema", "json_schema": {"name": "x", "schema": {}}})"},
      {"audio", R"({"voice": "alloy", "format": "wav"})"},
      {"modalities", R"(["text", "audio"])"},
      {"prediction", R"({"type": "content", "content": "x"})"},
      {"reasoning_effort", R"("high")"},
      {"web_search_options", "{}"},
      {"store", "true"},
      {"functions", R"([{"name": "f"}])"},
      {"function_call", R"("auto")"},
  };
  for (const auto& [key, value] : refused) {
    Error e = error_of("{" + kOk + ", \"" + key + "\": " + value + "}");
    EXPECT_EQ(e.code, Errc::kUnsupported) << key << " " << e.to_string();
    EXPECT_EQ(e.where, key);
    EXPECT_NE(e.message.find("not supported"), std::string::npos) << e.message;
  }
  EXPECT_EQ(message_of("{" + kOk + R"(, "n": 2})"), "'n' is not supported: one choice per request (n = 1)");
  EXPECT_EQ(message_of("{" + kOk + R"(, "n": 0})"), "'n' must be a positive integer");
  parse_ok("{" + kOk + R"(, "n": 1, "logprobs": false, "top_logprobs": 0, "frequency_penalty": 0,
                          "presence_penalty": 0.0, "logit_bias": {}, "response_format": {"type": "text"},
                          "modalities": ["text"], "store": false})");
}

TEST(ChatRequest, ParsesMessagesToolsAndOptionsKeepingToolKeyOrder) {
  ChatRequest r = parse_ok(R"({
    "messages": [
      {"role": "developer", "content": "sys"},
      {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "name": "bob"},
      {"role": "assistant", "content": null, "refusal": null,
       "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "result"}],
    "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {}}}],
    "max_tokens": 7, "temperature": 0, "stream": false, "stop": "END"})");
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[1].content, "ab");
  EXPECT_EQ(r.messages[2].tool_calls[0]["function"]["name"], "f");
  EXPECT_EQ(r.messages[3].role, "tool");
  // Not sorted: "type" stays before "function", "name" before "description".
  EXPECT_EQ(r.tools.dump(), R"([{"type":"function","function":{"name":"f","description":"d","parameters":{}}}])");
  EXPECT_EQ(r.tool_names, std::vector<std::string>{"f"});
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_EQ(r.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(r.sampling.temperature, 0);
  EXPECT_FALSE(r.stream);

  r = parse_ok("{" + kOk + "}");
  EXPECT_EQ(r.max_tokens, 64);
  EXPECT_TRUE(r.tools.is_null());
  EXPECT_EQ(r.tool_choice, ToolChoice::kAuto);
  EXPECT_TRUE(r.parallel_tool_calls);
}

TEST(ChatRequest, SamplingStreamingAndTokenLimits) {
  ChatRequest r = parse_ok("{" + kOk +
                           R"(, "temperature": 0.7, "top_p": 0.9, "seed": -3, "stream": true,
                                "stream_options": {"include_usage": true}, "max_tokens": 5,
                                "max_completion_tokens": 9, "stop": ["a", "b"]})");
  EXPECT_EQ(r.sampling.temperature, 0.7);
  EXPECT_EQ(r.sampling.top_p, 0.9);
  ASSERT_TRUE(r.sampling.seed.has_value());
  EXPECT_EQ(*r.sampling.seed, static_cast<uint64_t>(int64_t{-3}));
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.max_tokens, 9);  // max_completion_tokens wins
  EXPECT_EQ(r.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(message_of("{" + kOk + R"(, "stream_options": {"include_usage": true}})"),
            "'stream_options' is only allowed when 'stream' is true");
  EXPECT_EQ(message_of("{" + kOk + R"(, "stream": true, "stream_options": {"x": 1}})"),
            "'stream_options.x' is not a field of stream_options (include_usage: boolean)");
  EXPECT_EQ(message_of("{" + kOk + R"(, "seed": 1.5})"), "'seed' must be an integer");
}

TEST(ChatRequest, ToolChoice) {
  const std::string base = "{" + kOk + ", " + kTools;
  EXPECT_EQ(parse_ok(base + R"(, "tool_choice": "none"})").tool_choice, ToolChoice::kNone);
  EXPECT_EQ(parse_ok(base + R"(, "tool_choice": "auto"})").tool_choice, ToolChoice::kAuto);
  EXPECT_EQ(parse_ok(base + R"(, "tool_choice": "required"})").tool_choice, ToolChoice::kRequired);
  ChatRequest named = parse_ok(base + R"(, "tool_choice": {"type": "function", "function": {"name": "g-2"}}})");
  EXPECT_EQ(named.tool_choice, ToolChoice::kFunction);
  EXPECT_EQ(named.forced_tool, "g-2");
  EXPECT_EQ(named.tool_names, (std::vector<std::string>{"f", "g-2"}));
  EXPECT_FALSE(parse_ok(base + R"(, "parallel_tool_calls": false})").parallel_tool_calls);

  EXPECT_EQ(message_of(base + R"(, "tool_choice": "any"})"), "'tool_choice' 'any' is not one of none, auto, required");
  EXPECT_EQ(message_of(base + R"(, "tool_choice": {"type": "function", "function": {"name": "h"}}})"),
            "'tool_choice' names the function 'h', which is not in 'tools'");
  EXPECT_EQ(message_of("{" + kOk + R"(, "tool_choice": "required"})"),
            "'tool_choice' 'required' needs a non-empty 'tools' list");
  EXPECT_EQ(message_of("{" + kOk + R"(, "tools": [], "tool_choice": "required"})"),
            "'tool_choice' 'required' needs a non-empty 'tools' list");
  // "none" and "auto" need no tools.
  parse_ok("{" + kOk + R"(, "tool_choice": "none"})");
}

TEST(ChatRequest, ToolsMustBeNamedFunctions) {
  EXPECT_EQ(error_of("{" + kOk + R"(, "tools": [{"type": "code_interpreter"}]})").code, Errc::kUnsupported);
  EXPECT_EQ(message_of("{" + kOk + R"(, "tools": [{"type": "function", "function": {}}]})"),
            "tools[0].function must be an object with a string \"name\"");
  EXPECT_EQ(message_of("{" + kOk + R"(, "tools": [{"type": "function", "function": {"name": "a b"}}]})"),
            "tools[0].function.name 'a b' must be 1 to 64 letters, digits, '_' or '-'");
  EXPECT_TRUE(valid_function_name("search_code-2"));
  EXPECT_FALSE(valid_function_name(std::string(65, 'a')));
  EXPECT_FALSE(valid_function_name("a\"b"));
}

TEST(ChatRequest, ContentPartsOtherThanTextAreUnsupported) {
  Error e =
      error_of(R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]})");
  EXPECT_EQ(e.code, Errc::kUnsupported);
  EXPECT_EQ(e.where, "messages[0].content");
}

TEST(ChatRequest, DeepNestingIsRefusedWithoutRecursion) {
  std::string deep = "{" + kOk + R"(, "metadata": )" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_EQ(message_of(deep), "the request body is nested deeper than 64 levels");
}

TEST(ChatRequest, EveryTruncationOfAValidBodyIsAnError) {
  const std::string body = "{" + kOk + ", " + kTools +
                           R"(, "tool_choice": {"type": "function", "function": {"name": "f"}},
                                "stream": true, "stream_options": {"include_usage": true}, "stop": ["x"]})";
  parse_ok(body);
  for (size_t n = 0; n < body.size(); ++n) {
    auto r = parse_chat_request(std::string_view(body).substr(0, n), 64);
    EXPECT_FALSE(r.ok()) << n;
  }
}

}  // namespace
}  // namespace mb::gate
