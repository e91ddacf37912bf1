#include "gate/suite.h"

#include <gtest/gtest.h>

namespace mb::gate {
namespace {

const char* kSuite = R"(
name: discrimination
system: "You are a coding assistant."
max_tokens: 48
tools:
  - type: function
    function:
      name: search_code
      description: Search the code base
      parameters: {type: object, properties: {query: {type: string}}, required: [query]}
cases:
  - {prompt: "What is dependency injection?", expect: direct}
  - {prompt: "Find all classes that inherit from Protocol", expect: tool, tool: search_code}
)";

TEST(Suite, Parses) {
  auto s = parse_suite(kSuite, "suite.yaml");
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(s->name, "discrimination");
  EXPECT_EQ(s->max_tokens, 48);
  ASSERT_EQ(s->cases.size(), 2u);
  EXPECT_EQ(s->cases[1].expect, Expect::kTool);
  EXPECT_EQ(s->cases[1].tool, "search_code");
  EXPECT_EQ(s->tool_names(), std::vector<std::string>{"search_code"});
  // Key order of tool definitions is kept: it is rendered into the prompt.
  EXPECT_EQ(s->tools[0]["function"].dump().substr(0, 22), "{\"name\":\"search_code\",");
}

void expect_error(const std::string& text, const std::string& where, const std::string& needle) {
  auto s = parse_suite(text, "suite.yaml");
  ASSERT_FALSE(s.ok()) << needle;
  EXPECT_EQ(exit_code_for(s.error().code), 2);
  EXPECT_EQ(s.error().where, where) << s.error().to_string();
  EXPECT_NE(s.error().message.find(needle), std::string::npos) << s.error().to_string();
}

TEST(Suite, ValidationErrorsNameLineAndColumn) {
  expect_error("cases:\n  - {prompt: x, expect: tol}\n", "suite.yaml:2:25", "did you mean 'tool'");
  expect_error("cases:\n  - {prompt: x, expected: tool}\n", "suite.yaml:2:17", "unknown key 'expected'");
  expect_error("casse: []\n", "suite.yaml:1:1", "did you mean 'cases'");
  expect_error("cases: []\n", "suite.yaml:1:8", "non-empty list");
  expect_error("max_tokens: lots\ncases:\n  - {prompt: x, expect: direct}\n", "suite.yaml:1:13", "integer");
  expect_error("tools:\n  - {type: function, function: {name: a}}\ncases:\n  - {prompt: x, expect: tool, tool: b}\n",
               "suite.yaml:4:37", "not among the suite's tools");
  expect_error("cases:\n  - {prompt: x, expect: direct, tool: a}\n", "suite.yaml:2:39", "only makes sense");
}

TEST(Suite, CanonicalFormIgnoresFormatting) {
  auto a = parse_suite(kSuite, "a.yaml");
  auto b = parse_suite(std::string("# a comment\n") + kSuite, "b.yaml");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->canonical(), b->canonical());
}

}  // namespace
}  // namespace mb::gate
