// Expected prompts are spelled out in full: §1 and §2 of
// docs/formats/chat-template.md byte for byte, the rest written from the rules of §3
// (and checked against the Qwen2.5 Jinja template while writing them).
#include "inference/chat_template.h"

#include <gtest/gtest.h>

namespace mb::inference {
namespace {

using OJson = nlohmann::ordered_json;

const OJson kWeatherTool = OJson::parse(R"({"type": "function", "function": {"name": "get_weather",
  "description": "Get weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
  "required": ["city"]}}})");

std::string render(const OJson& messages, const OJson& tools = nullptr, bool generation_prompt = true,
                   std::string_view default_system = kQwen25DefaultSystem) {
  Result<std::string> r = render_chatml_json(messages, tools, generation_prompt, default_system);
  EXPECT_TRUE(r.ok()) << r.error().to_string();
  return r.ok() ? *r : "";
}

TEST(ChatTemplateTest, Spec51DefaultSystemMessage) {
  EXPECT_EQ(render(OJson::parse(R"([{"role": "user", "content": "Hi"}])")),
            "<|im_start|>system\n"
            "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\n"
            "Hi<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplateTest, Spec52ToolsInTheSystemPrompt) {
  EXPECT_EQ(render(OJson::parse(R"([{"role": "user", "content": "Weather in Paris?"}])"), OJson::array({kWeatherTool})),
            "<|im_start|>system\n"
            "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n"
            "\n"
            "# Tools\n"
            "\n"
            "You may call one or more functions to assist with the user query.\n"
            "\n"
            "You are provided with function signatures within <tools></tools> XML tags:\n"
            "<tools>\n"
            "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get weather\", "
            "\"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": "
            "[\"city\"]}}}\n"
            "</tools>\n"
            "\n"
            "For each function call, return a json object with function name and arguments within "
            "<tool_call></tool_call> XML tags:\n"
            "<tool_call>\n"
            "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n"
            "</tool_call><|im_end|>\n"
            "<|im_start|>user\n"
            "Weather in Paris?<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplateTest, OwnSystemMessageAndNoGenerationPrompt) {
  EXPECT_EQ(render(OJson::parse(R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                                   {"role": "assistant", "content": "Hello."}])"),
                   nullptr, false),
            "<|im_start|>system\nBe brief.<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello.<|im_end|>\n");
  // A later system message is an ordinary turn; an empty tools list is no tools.
  EXPECT_EQ(render(OJson::parse(R"([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}])"),
                   OJson::array(), false),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\na<|im_end|>\n"
            "<|im_start|>system\nb<|im_end|>\n");
}

TEST(ChatTemplateTest, ToolCallAndToolResponsesHistory) {
  // OpenAI wire form: string arguments, null content, two tool results.
  OJson messages = OJson::parse(R"([
    {"role": "system", "content": "You are a weather bot."},
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {"role": "assistant", "content": null, "tool_calls": [
      {"id": "call_1", "type": "function",
       "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"unit\": \"C\"}"}},
      {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Rome"}}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
    {"role": "tool", "tool_call_id": "call_2", "content": "21C, cloudy"},
    {"role": "assistant", "content": "Paris: 18C and sunny. Rome: 21C and cloudy."},
    {"role": "user", "content": "Thanks"}])");
  EXPECT_EQ(
      render(messages, OJson::array({kWeatherTool})),
      "<|im_start|>system\n"
      "You are a weather bot.\n"
      "\n"
      "# Tools\n"
      "\n"
      "You may call one or more functions to assist with the user query.\n"
      "\n"
      "You are provided with function signatures within <tools></tools> XML tags:\n"
      "<tools>\n"
      "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get weather\", "
      "\"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": "
      "[\"city\"]}}}\n"
      "</tools>\n"
      "\n"
      "For each function call, return a json object with function name and arguments within "
      "<tool_call></tool_call> XML tags:\n"
      "<tool_call>\n"
      "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n"
      "</tool_call><|im_end|>\n"
      "<|im_start|>user\nWeather in Paris and Rome?<|im_end|>\n"
      "<|im_start|>assistant\n"
      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"C\"}}\n</tool_call>\n"
      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}\n</tool_call><|im_end|>\n"
      "<|im_start|>user\n"
      "<tool_response>\n18C, sunny\n</tool_response>\n"
      "<tool_response>\n21C, cloudy\n</tool_response><|im_end|>\n"
      "<|im_start|>assistant\nParis: 18C and sunny. Rome: 21C and cloudy.<|im_end|>\n"
      "<|im_start|>user\nThanks<|im_end|>\n"
      "<|im_start|>assistant\n");
}

TEST(ChatTemplateTest, AssistantTextBeforeToolCallsAndToolTurnAtTheEnd) {
  OJson messages = OJson::parse(R"([
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Let me check.",
     "tool_calls": [{"name": "lookup", "arguments": {"q": "x", "n": 2}}]},
    {"role": "tool", "content": "found"}])");
  EXPECT_EQ(render(messages, nullptr, true, ""),
            "<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nLet me check.\n<tool_call>\n{\"name\": \"lookup\", \"arguments\": {\"q\": \"x\", "
            "\"n\": 2}}\n</tool_call><|im_end|>\n"
            "<|im_start|>user\n<tool_response>\nfound\n</tool_response><|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplateTest, ArgumentsThatAreNotJsonStayAString) {
  OJson messages = OJson::parse(R"([{"role": "assistant", "content": "",
    "tool_calls": [{"function": {"name": "f", "arguments": "not json"}}]}])");
  EXPECT_EQ(
      render(messages, nullptr, false, ""),
      "<|im_start|>assistant\n<tool_call>\n{\"name\": \"f\", \"arguments\": \"not json\"}\n</tool_call><|im_end|>\n");
}

TEST(ChatTemplateTest, EmptyDefaultSystemWithTools) {
  std::string out =
      render(OJson::parse(R"([{"role": "user", "content": "Hi"}])"), OJson::array({OJson::object()}), false, "");
  EXPECT_EQ(out.substr(0, 30), "<|im_start|>system\n# Tools\n\nYo");
}

TEST(ChatTemplateTest, NonAsciiPassesThrough) {
  OJson tool = OJson::parse(R"({"type": "function", "function": {"name": "météo",
    "description": "Wetter für eine Stadt 🌤", "parameters": {}}})");
  std::string out = render(OJson::parse(R"([{"role": "user", "content": "Погода в Париже?"}])"), OJson::array({tool}));
  EXPECT_NE(out.find("{\"type\": \"function\", \"function\": {\"name\": \"météo\", \"description\": \"Wetter für "
                     "eine Stadt 🌤\", \"parameters\": {}}}\n</tools>"),
            std::string::npos);
  EXPECT_NE(out.find("<|im_start|>user\nПогода в Париже?<|im_end|>\n"), std::string::npos);
}

TEST(ChatTemplateTest, ContentParts) {
  EXPECT_EQ(render(OJson::parse(R"([{"role": "user", "content": [{"type": "text", "text": "a"},
                                                                 {"type": "text", "text": "b"}]}])"),
                   nullptr, false, ""),
            "<|im_start|>user\nab<|im_end|>\n");
}

TEST(ChatTemplateTest, EngineMessages) {
  std::vector<ChatMessage> messages = {{"user", "Hi"}};
  Result<std::string> r = render_chatml(messages, nullptr, true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r,
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplateTest, EngineMessagesWithToolCalls) {
  std::vector<ChatMessage> messages = {
      {"user", "Find views"},
      {"assistant", "",
       OJson::parse(R"([{"function": {"name": "search_code", "arguments": "{\"query\": \"views\"}"}}])")},
      {"tool", "views.py"}};
  Result<std::string> r = render_chatml(messages, nullptr, true, "");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(*r,
            "<|im_start|>user\nFind views<|im_end|>\n"
            "<|im_start|>assistant\n<tool_call>\n{\"name\": \"search_code\", \"arguments\": {\"query\": \"views\"}}\n"
            "</tool_call><|im_end|>\n"
            "<|im_start|>user\n<tool_response>\nviews.py\n</tool_response><|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplateTest, PlainJsonToolsLoseTheirKeyOrder) {
  // nlohmann::json sorts keys, so the rendered tool no longer matches what
  // Python would print for the request: callers should parse requests into
  // ordered_json. This pins the (documented) behaviour.
  nlohmann::json sorted = nlohmann::json::parse(R"({"type": "function", "function": {"name": "f"}})");
  std::vector<ChatMessage> messages = {{"user", "Hi"}};
  Result<std::string> r = render_chatml(messages, nlohmann::json::array({sorted}), false);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_NE(r->find("\n{\"function\": {\"name\": \"f\"}, \"type\": \"function\"}\n"), std::string::npos);
}

TEST(ChatTemplateTest, ErrorsNameTheMessage) {
  Result<std::string> r = render_chatml_json(OJson::parse(R"([{"role": "user", "content": "a"},
                                                             {"role": "developer", "content": "b"}])"),
                                             nullptr, true);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().to_string(), "messages[1].role: \"developer\" is not one of system, user, assistant, tool");
  r = render_chatml_json(OJson::parse(R"([{"role": "assistant", "tool_calls": [{"function": {"arguments": {}}}]}])"),
                         nullptr, true);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().to_string(), "messages[0].tool_calls[0]: missing function name");
  r = render_chatml_json(OJson::parse(R"([{"role": "user", "content": 5}])"), nullptr, true);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().to_string(), "messages[0].content: expected a string, null or a list of parts, got number");
  r = render_chatml_json(OJson::object(), nullptr, true);
  EXPECT_FALSE(r.ok());
  OJson deep = OJson::array();
  for (int i = 0; i < 300; ++i) deep = OJson::array({deep});
  r = render_chatml_json(OJson::array({{{"role", "user"}, {"content", "x"}}}), OJson::array({deep}), true);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().to_string(), "tools: nested too deeply");
}

// Python: json.dumps(x, ensure_ascii=False). Expected strings are what
// CPython 3.11 prints for the same values.
TEST(ChatJsonTest, MatchesPythonJsonDumps) {
  EXPECT_EQ(python_json_dumps(OJson::parse(R"({"b": 1, "a": [true, false, null], "c": {}, "d": []})")),
            R"({"b": 1, "a": [true, false, null], "c": {}, "d": []})");
  // Escapes: quote, backslash, the five short forms, other controls as
  // \u00XX (lower-case hex); DEL, "/" and non-ASCII pass through.
  EXPECT_EQ(python_json_dumps(std::string("q\"b\\s/n\nr\rt\tb\bf\f\x01\x1f\x7f\xC3\xA9\xF0\x9F\x98\x80")),
            "\"q\\\"b\\\\s/n\\nr\\rt\\tb\\bf\\f\\u0001\\u001f\x7f\xC3\xA9\xF0\x9F\x98\x80\"");
  EXPECT_EQ(python_json_dumps(std::string("<tag>&'")), "\"<tag>&'\"");  // no HTML escaping
}

TEST(ChatJsonTest, NumbersLikePythonRepr) {
  auto dumps = [](double v) { return python_json_dumps(OJson(v)); };
  EXPECT_EQ(dumps(1.0), "1.0");
  EXPECT_EQ(dumps(-0.0), "-0.0");
  EXPECT_EQ(dumps(0.1), "0.1");
  EXPECT_EQ(dumps(2.5), "2.5");
  EXPECT_EQ(dumps(123456.789), "123456.789");
  EXPECT_EQ(dumps(0.0001), "0.0001");
  EXPECT_EQ(dumps(0.00001), "1e-05");
  EXPECT_EQ(dumps(1.5e-7), "1.5e-07");
  EXPECT_EQ(dumps(1e15), "1000000000000000.0");
  EXPECT_EQ(dumps(1e16), "1e+16");
  EXPECT_EQ(dumps(1.2345678901234567e17), "1.2345678901234566e+17");
  EXPECT_EQ(dumps(1e100), "1e+100");
  EXPECT_EQ(dumps(-3.14), "-3.14");
  EXPECT_EQ(python_json_dumps(OJson::parse("[1, -2, 18446744073709551615, 1.50]")),
            "[1, -2, 18446744073709551615, 1.5]");
}

}  // namespace
}  // namespace mb::inference
