#include "gate/tool_call_stream.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "gate/classify.h"

namespace mb::gate {
namespace {

// What a client reassembles from the events.
struct Reply {
  std::string content;
  std::vector<std::pair<std::string, std::string>> calls;  // name, arguments
  std::vector<ReplyEvent::Kind> kinds;
  bool open = false;
  bool operator==(const Reply& o) const { return content == o.content && calls == o.calls && open == o.open; }
};

std::ostream& operator<<(std::ostream& os, const Reply& r) {
  os << "content=" << nlohmann::json(r.content).dump() << " calls=[";
  for (const auto& [n, a] : r.calls) os << n << "(" << a << ") ";
  return os << "] open=" << r.open;
}

Reply run(const std::vector<std::string>& pieces, ToolCallStreamOptions options = {}) {
  Reply r;
  ToolCallStream s(options, [&](const ReplyEvent& e) {
    r.kinds.push_back(e.kind);
    switch (e.kind) {
      case ReplyEvent::Kind::kContent:
        r.content += e.text;
        break;
      case ReplyEvent::Kind::kToolCall:
        EXPECT_EQ(e.index, static_cast<int>(r.calls.size()));
        r.calls.push_back({e.text, ""});
        break;
      case ReplyEvent::Kind::kToolArguments:
        EXPECT_EQ(e.index, static_cast<int>(r.calls.size()) - 1);
        r.calls.back().second += e.text;
        break;
    }
  });
  for (const auto& p : pieces) s.feed(p);
  s.finish();
  r.open = s.call_open();
  EXPECT_EQ(s.calls(), static_cast<int>(r.calls.size()));
  return r;
}

Reply whole(const std::string& text, ToolCallStreamOptions o = {}) { return run({text}, o); }

// Byte by byte, and at every single split point: the same reply.
void expect_split_independent(const std::string& text, ToolCallStreamOptions o = {}) {
  const Reply ref = whole(text, o);
  std::vector<std::string> bytes;
  for (char c : text) bytes.push_back(std::string(1, c));
  EXPECT_EQ(run(bytes, o), ref) << "byte by byte: " << text;
  for (size_t k = 1; k < text.size(); ++k)
    EXPECT_EQ(run({text.substr(0, k), text.substr(k)}, o), ref) << "split at " << k << ": " << text;
}

const std::string kCall =
    "<tool_call>\n{\"name\": \"search_code\", \"arguments\": {\"query\": \"a {b} \\\"c\\\"\", \"k\": [1, 2]}}\n"
    "</tool_call>";

TEST(ToolCallStream, QwenCallBecomesACallWithCompactArguments) {
  Reply r = whole(kCall);
  EXPECT_EQ(r.content, "");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].first, "search_code");
  EXPECT_EQ(r.calls[0].second, R"({"query":"a {b} \"c\"","k":[1,2]})");
  EXPECT_FALSE(r.open);
  expect_split_independent(kCall);
}

TEST(ToolCallStream, ArgumentsStreamAsTheyArriveAfterTheName) {
  std::vector<std::string> bytes;
  for (char c : kCall) bytes.push_back(std::string(1, c));
  Reply r = run(bytes);
  ASSERT_GE(r.kinds.size(), 3u);
  EXPECT_EQ(r.kinds[0], ReplyEvent::Kind::kToolCall);
  size_t fragments = 0;
  for (auto k : r.kinds) fragments += k == ReplyEvent::Kind::kToolArguments;
  EXPECT_GT(fragments, 20u);  // not held back until the end
}

TEST(ToolCallStream, ContentAroundCallsIsTrimmedAsParseQwenToolCallsTrimsIt) {
  const std::vector<std::string> texts = {
      "Let me look.\n" + kCall,
      "  Before\n\n" + kCall + "\nafter it.  \n",
      kCall + "\n" + kCall,
      "Plain answer with a < sign and <tool_ but no call.\n",
      "<tool_call>\n{\"arguments\": {\"q\": 1}, \"name\": \"f\"}\n</tool_call>",           // other key order
      "<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"q\\\": 1}\"}</tool_call> tail",  // string arguments
      "x <tool_call>{oops}</tool_call> y",                                                 // malformed: content
      "<tool_call>{\"name\": \"f\"}</tool_call>",                                          // no arguments: content
  };
  for (const std::string& text : texts) {
    SCOPED_TRACE(text);
    Reply r = whole(text);
    QwenToolCalls q = parse_qwen_tool_calls(text);
    EXPECT_EQ(r.content, q.content);
    ASSERT_EQ(r.calls.size(), q.calls.size());
    for (size_t i = 0; i < q.calls.size(); ++i) {
      EXPECT_EQ(r.calls[i].first, q.calls[i].name);
      EXPECT_EQ(nlohmann::ordered_json::parse(r.calls[i].second), q.calls[i].arguments);
    }
    expect_split_independent(text);
  }
}

TEST(ToolCallStream, MalformedBlocksStayInTheContentWithTheirTags) {
  Reply r = whole("x <tool_call>{oops}</tool_call> y");
  EXPECT_EQ(r.content, "x <tool_call>{oops}</tool_call> y");
  EXPECT_TRUE(r.calls.empty());
  // Cut before the header was complete: content too.
  r = whole("<tool_call>\n{\"name\": \"sea");
  EXPECT_EQ(r.content, "<tool_call>\n{\"name\": \"sea");
  EXPECT_TRUE(r.calls.empty());
}

TEST(ToolCallStream, ACallCutInItsArgumentsStaysOpen) {
  Reply r = whole("<tool_call>\n{\"name\": \"f\", \"arguments\": {\"q\": \"abc");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].second, R"({"q":"abc)");
  EXPECT_TRUE(r.open);
  expect_split_independent("<tool_call>\n{\"name\": \"f\", \"arguments\": {\"q\": \"abc");
  // The close tag ends a call whose braces never balanced.
  r = whole("<tool_call>{\"name\": \"f\", \"arguments\": {\"q\": 1</tool_call>then");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].second, R"({"q":1)");
  EXPECT_FALSE(r.open);
  EXPECT_EQ(r.content, "then");
  // An unclosed tag after complete arguments (the token limit cut it).
  r = whole("<tool_call>{\"name\": \"f\", \"arguments\": {}}\n</tool");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_FALSE(r.open);
}

TEST(ToolCallStream, MaxCallsDropsEverythingAfterTheLastAllowedCall) {
  ToolCallStreamOptions one;
  one.max_calls = 1;
  bool done_seen = false;
  ToolCallStream s(one, [](const ReplyEvent&) {});
  s.feed("<tool_call>{\"name\": \"f\", \"arguments\": {}}");
  done_seen = s.done();
  EXPECT_TRUE(done_seen);  // the generation can stop here
  Reply r = whole(kCall + "\nand more " + kCall, one);
  EXPECT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.content, "");
  expect_split_independent(kCall + "\nand more " + kCall, one);
}

TEST(ToolCallStream, WithoutCallParsingEverythingIsContent) {
  ToolCallStreamOptions none;
  none.parse_calls = false;
  Reply r = whole("\n" + kCall + " ", none);
  EXPECT_TRUE(r.calls.empty());
  EXPECT_EQ(r.content, kCall);
  expect_split_independent(kCall, none);
}

}  // namespace
}  // namespace mb::gate
