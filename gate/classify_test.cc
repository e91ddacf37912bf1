#include "gate/classify.h"

#include <gtest/gtest.h>

namespace mb::gate {
namespace {

const std::vector<std::string> kTools = {"search_code", "read_file"};

Classification run(const std::string& text, const nlohmann::json& structured = nullptr, ClassifyRule rule = {}) {
  return classify(text, structured, rule, kTools);
}

TEST(Classify, QwenToolCall) {
  auto k = run("<tool_call>\n{\"name\": \"search_code\", \"arguments\": {\"query\": \"Protocol\"}}\n</tool_call>");
  ASSERT_TRUE(k.is_tool_call);
  EXPECT_EQ(k.form, "qwen");
  EXPECT_EQ(k.calls[0].name, "search_code");
  EXPECT_EQ(k.calls[0].arguments["query"], "Protocol");
}

TEST(Classify, QwenCallAfterTextAndCutAtTheLimit) {
  auto k = run("Let me look.\n<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"a.py\"}}\n");
  ASSERT_TRUE(k.is_tool_call);
  EXPECT_EQ(k.calls[0].name, "read_file");
}

TEST(Classify, BareAndFencedJson) {
  auto bare = run("I'll use the tool.\n{\"name\": \"search_code\", \"arguments\": {\"query\": \"x\"}}");
  EXPECT_TRUE(bare.is_tool_call);
  EXPECT_EQ(bare.form, "json");
  auto fenced = run("```json\n{\"name\": \"search_code\", \"arguments\": \"{\\\"query\\\": \\\"x\\\"}\"}\n```");
  ASSERT_TRUE(fenced.is_tool_call);
  EXPECT_EQ(fenced.calls[0].arguments["query"], "x");  // string arguments parsed
}

TEST(Classify, OpenAIStructuredCalls) {
  nlohmann::json calls = nlohmann::json::parse(
      R"([{"id":"c1","type":"function","function":{"name":"search_code","arguments":"{\"query\":\"q\"}"}}])");
  auto k = run("", calls);
  ASSERT_TRUE(k.is_tool_call);
  EXPECT_EQ(k.form, "openai");
  EXPECT_EQ(k.calls[0].arguments["query"], "q");
}

TEST(Classify, DirectAnswers) {
  EXPECT_FALSE(run("Dependency injection is a technique where objects receive their dependencies.").is_tool_call);
  EXPECT_FALSE(run("").is_tool_call);
}

TEST(Classify, AmbiguousResponsesAreDecidedAndNoted) {
  auto malformed = run("<tool_call>\n{\"name\": \"search_code\", \"arguments\": {\"query\": }\n</tool_call>");
  EXPECT_FALSE(malformed.is_tool_call);
  ASSERT_FALSE(malformed.notes.empty());
  EXPECT_NE(malformed.notes[0].find("malformed JSON"), std::string::npos);

  auto mention = run("You could call the tool_call search_code with a query.");
  EXPECT_FALSE(mention.is_tool_call);

  auto no_args = run("{\"name\": \"search_code\"}");
  EXPECT_FALSE(no_args.is_tool_call);
  ASSERT_FALSE(no_args.notes.empty());
  EXPECT_NE(no_args.notes[0].find("no \"arguments\""), std::string::npos);

  auto unknown = run("<tool_call>{\"name\": \"delete_all\", \"arguments\": {}}</tool_call>");
  EXPECT_TRUE(unknown.is_tool_call);
  EXPECT_NE(unknown.notes.back().find("does not define"), std::string::npos);

  auto two =
      run("<tool_call>{\"name\": \"search_code\", \"arguments\": {}}</tool_call>\n"
          "<tool_call>{\"name\": \"read_file\", \"arguments\": {}}</tool_call>");
  EXPECT_EQ(two.calls.size(), 2u);
}

TEST(Classify, TheRuleCanExcludeForms) {
  ClassifyRule qwen_only{true, false, false};
  EXPECT_FALSE(run("{\"name\": \"search_code\", \"arguments\": {}}", nullptr, qwen_only).is_tool_call);
  EXPECT_TRUE(
      run("<tool_call>{\"name\": \"search_code\", \"arguments\": {}}</tool_call>", nullptr, qwen_only).is_tool_call);
}

TEST(CasePasses, ExpectationsAndNamedTools) {
  std::string why;
  auto call = run("<tool_call>{\"name\": \"read_file\", \"arguments\": {}}</tool_call>");
  auto direct = run("A plain answer.");
  EXPECT_TRUE(case_passes({"p", Expect::kTool, ""}, call, &why));
  EXPECT_FALSE(case_passes({"p", Expect::kTool, "search_code"}, call, &why));
  EXPECT_EQ(why, "called read_file instead of search_code");
  EXPECT_FALSE(case_passes({"p", Expect::kDirect, ""}, call, &why));
  EXPECT_TRUE(case_passes({"p", Expect::kDirect, ""}, direct, &why));
  EXPECT_FALSE(case_passes({"p", Expect::kTool, ""}, direct, &why));
  EXPECT_EQ(why, "answered directly instead of calling a tool");
}

}  // namespace
}  // namespace mb::gate
