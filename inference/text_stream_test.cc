#include "inference/text_stream.h"

#include <gtest/gtest.h>

namespace mb::inference {
namespace {

struct Collector {
  std::vector<std::string> pieces;
  std::function<void(std::string_view)> fn() {
    return [this](std::string_view s) { pieces.emplace_back(s); };
  }
  std::string joined() const {
    std::string s;
    for (const auto& p : pieces) s += p;
    return s;
  }
};

TEST(TextStream, StreamsEverythingWithoutStops) {
  Collector c;
  TextStream ts({}, c.fn());
  for (std::string_view s : {"He", "Hello", "Hello wor", "Hello world"}) EXPECT_FALSE(ts.update(s));
  ts.finish();
  EXPECT_EQ(c.joined(), "Hello world");
  EXPECT_EQ(c.pieces.front(), "He");
}

TEST(TextStream, HoldsBackIncompleteUtf8) {
  Collector c;
  TextStream ts({}, c.fn());
  const std::string euro = "\xE2\x82\xAC";  // U+20AC, 3 bytes
  // std::string("a") + …, not "a" + …: GCC 12 -O3 warns a false -Wrestrict.
  ts.update(std::string("a") + euro.substr(0, 1));
  EXPECT_EQ(c.joined(), "a");
  ts.update(std::string("a") + euro.substr(0, 2));
  EXPECT_EQ(c.joined(), "a");
  ts.update("a" + euro);
  EXPECT_EQ(c.joined(), "a" + euro);
  // A decoder that replaces the partial sequence with U+FFFD: held back too.
  ts.update("a" + euro + "\xEF\xBF\xBD");
  EXPECT_EQ(c.joined(), "a" + euro);
  ts.update("a" + euro + "\xC3\xA9");
  ts.finish();
  EXPECT_EQ(c.joined(), "a" + euro + "\xC3\xA9");
  for (const auto& p : c.pieces) EXPECT_EQ(complete_utf8_prefix(p), p.size()) << "piece splits a character";
}

TEST(TextStream, CutsAtStopStringAndNeverStreamsIt) {
  Collector c;
  TextStream ts({"</end>", "STOP"}, c.fn());
  EXPECT_FALSE(ts.update("abc"));
  EXPECT_FALSE(ts.update("abc de</"));
  EXPECT_FALSE(ts.update("abc de</en"));
  EXPECT_TRUE(ts.update("abc de</end> more"));
  ts.finish();
  EXPECT_EQ(ts.text(), "abc de");
  EXPECT_EQ(c.joined(), "abc de");
}

TEST(TextStream, EarliestStopWins) {
  TextStream ts({"xyz", "b"}, nullptr);
  EXPECT_TRUE(ts.update("a b xyz"));
  EXPECT_EQ(ts.text(), "a ");
}

TEST(TextStream, CompleteUtf8Prefix) {
  EXPECT_EQ(complete_utf8_prefix(""), 0u);
  EXPECT_EQ(complete_utf8_prefix("ab"), 2u);
  EXPECT_EQ(complete_utf8_prefix("a\xC3"), 1u);
  EXPECT_EQ(complete_utf8_prefix("a\xC3\xA9"), 3u);
  EXPECT_EQ(complete_utf8_prefix("a\xF0\x9F\x98"), 1u);
  EXPECT_EQ(complete_utf8_prefix("a\xF0\x9F\x98\x80"), 5u);
}

}  // namespace
}  // namespace mb::inference
