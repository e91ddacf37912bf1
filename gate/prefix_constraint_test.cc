#include "gate/prefix_constraint.h"

#include <gtest/gtest.h>

#include <cmath>

namespace mb::gate {
namespace {

// A toy vocabulary: single characters, a few words, an added-token-like
// "<tool_call>", and an empty text (a special token).
std::shared_ptr<const TokenTexts> vocab() {
  return std::make_shared<const TokenTexts>(std::vector<std::string>{
      "",  "<",  "tool",   "_call",     ">",    "<tool_call>", "\n", "{\"", "name",  "\": \"", "f",
      "g", "go", "\", \"", "arguments", "\": ", "{",           "x",  " ",   "Hello", "\": {",  "o"});
}

int32_t id_of(const std::string& t) {
  auto v = vocab();
  for (size_t i = 0; i < v->text.size(); ++i)
    if (v->text[i] == t) return static_cast<int32_t>(i);
  return -1;
}

std::vector<int32_t> allowed(const PrefixConstraint& c, const std::vector<int32_t>& generated) {
  std::vector<float> logits(vocab()->text.size(), 0.0f);
  c.apply(generated, logits);
  std::vector<int32_t> ids;
  for (size_t i = 0; i < logits.size(); ++i)
    if (!std::isinf(logits[i])) ids.push_back(static_cast<int32_t>(i));
  return ids;
}

TEST(PrefixConstraint, AllowsEveryTokenizationOfThePrefixAndNothingElse) {
  PrefixConstraint c(vocab(), {tool_call_prefix("f")});
  EXPECT_EQ(allowed(c, {}), (std::vector<int32_t>{id_of("<"), id_of("<tool_call>")}));
  EXPECT_EQ(allowed(c, {id_of("<")}), std::vector<int32_t>{id_of("tool")});
  EXPECT_EQ(allowed(c, {id_of("<tool_call>")}), std::vector<int32_t>{id_of("\n")});
  // The name: only "f" (not "g", not "go").
  std::vector<int32_t> g = {id_of("<tool_call>"), id_of("\n"), id_of("{\""), id_of("name"), id_of("\": \"")};
  EXPECT_EQ(allowed(c, g), std::vector<int32_t>{id_of("f")});
  // Tokens that run past the end of the prefix are allowed ("\": {" and
  // "\": \"" after "arguments").
  g.insert(g.end(), {id_of("f"), id_of("\", \""), id_of("arguments")});
  EXPECT_EQ(allowed(c, g), (std::vector<int32_t>{id_of("\": \""), id_of("\": "), id_of("\": {")}));
  // Complete: everything goes, the empty (special) token included.
  g.push_back(id_of("\": "));
  EXPECT_EQ(allowed(c, g).size(), vocab()->text.size());
}

TEST(PrefixConstraint, SeveralPrefixesLeaveTheChoiceToTheModel) {
  PrefixConstraint c(vocab(), {tool_call_prefix("f"), tool_call_prefix("go")});
  std::vector<int32_t> g = {id_of("<tool_call>"), id_of("\n"), id_of("{\""), id_of("name"), id_of("\": \"")};
  EXPECT_EQ(allowed(c, g), (std::vector<int32_t>{id_of("f"), id_of("g"), id_of("go")}));
  g.push_back(id_of("g"));
  // After "g" only "go" is left: its "o", not the quote that would end "g".
  EXPECT_EQ(allowed(c, g), std::vector<int32_t>{id_of("o")});
}

TEST(PrefixConstraint, NoFittingTokenLeavesTheLogitsAlone) {
  auto tiny = std::make_shared<const TokenTexts>(std::vector<std::string>{"a", "b"});
  PrefixConstraint c(tiny, {"zz"});
  std::vector<float> logits = {1.0f, 2.0f};
  c.apply({}, logits);
  EXPECT_EQ(logits, (std::vector<float>{1.0f, 2.0f}));
}

}  // namespace
}  // namespace mb::gate
