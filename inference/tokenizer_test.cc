// Encoding and decoding on the hand-made vocabulary of
// tokenizer_test_support.h. Every expected id list below was worked out by
// hand from the merges table (ids 0..255 are the bytes themselves).
#include "inference/tokenizer.h"

#include <gtest/gtest.h>

#include "inference/tokenizer_test_support.h"
#include "inference/tokenizer_unicode.h"

namespace mb::inference {
namespace {

using Ids = std::vector<int32_t>;

Tokenizer make(test::MergeForm form = test::MergeForm::kPairs,
               nlohmann::ordered_json pre = test::qwen2_pre_tokenizer()) {
  Result<Tokenizer> t = Tokenizer::from_json(test::test_tokenizer_doc(form, std::move(pre)).dump());
  EXPECT_TRUE(t.ok()) << t.error().to_string();
  return std::move(t).value();
}

class TokenizerTest : public ::testing::Test {
 protected:
  Ids encode(std::string_view text) {
    Result<Ids> ids = m_tok.encode(text);
    EXPECT_TRUE(ids.ok()) << ids.error().to_string();
    return ids.ok() ? *ids : Ids{};
  }
  Tokenizer m_tok = make();
};

TEST_F(TokenizerTest, MergesWordsByRank) {
  EXPECT_EQ(encode("hello"), (Ids{264}));
  EXPECT_EQ(encode(" world"), (Ids{260}));
  EXPECT_EQ(encode("hello world"), (Ids{264, 260}));
  EXPECT_EQ(encode("world"), (Ids{'w', 257, 258}));  // no "w or" merge without the space
}

TEST_F(TokenizerTest, RankOrderBeatsLeftToRightOrder) {
  // "b c" (rank 9) is merged before "a b" (rank 10).
  EXPECT_EQ(encode("abc"), (Ids{'a', 265}));
  EXPECT_EQ(encode("abab"), (Ids{266, 266}));
  // " he": "h e" (rank 5) wins over "Ġ h" (rank 16) although Ġh comes first.
  EXPECT_EQ(encode(" he"), (Ids{' ', 261}));
  EXPECT_EQ(encode(" h"), (Ids{272}));
}

TEST_F(TokenizerTest, EqualRanksMergeLeftmostFirst) {
  EXPECT_EQ(encode("aaa"), (Ids{267, 'a'}));
  EXPECT_EQ(encode("aaaa"), (Ids{267, 267}));
  EXPECT_EQ(encode("aaaaa"), (Ids{267, 267, 'a'}));
}

TEST_F(TokenizerTest, LegacyAndPairMergesGiveTheSameIds) {
  Tokenizer legacy = make(test::MergeForm::kLegacyStrings);
  for (std::string_view text : {"hello world", "abcabc aaa", " h he hello", "it's 333\n\n\nx", "<|im_start|>hi",
                                "Ünïcödé  wörld", "  hello\t\tworld \n"}) {
    Result<Ids> a = legacy.encode(text);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(*a, encode(text)) << text;
  }
}

TEST_F(TokenizerTest, LeadingSpaceStaysWithTheWord) {
  // "\s+(?!\S)" leaves the last space to the word: " " + " hello".
  EXPECT_EQ(encode("  hello"), (Ids{' ', ' ', 264}));
  EXPECT_EQ(encode("a  world"), (Ids{'a', ' ', 260}));
  // Trailing spaces at the end of the text stay one piece.
  EXPECT_EQ(encode("a  "), (Ids{'a', 269}));
}

TEST_F(TokenizerTest, DigitsAreSplitOneByOne) {
  // "3 3" is a merge, but Qwen's \p{N} makes each digit its own piece.
  EXPECT_EQ(encode("333"), (Ids{'3', '3', '3'}));
  EXPECT_EQ(encode("a33"), (Ids{'a', '3', '3'}));
}

TEST_F(TokenizerTest, ContractionsAreCaseInsensitivePieces) {
  EXPECT_EQ(encode("it's"), (Ids{'i', 't', 270}));
  EXPECT_EQ(encode("IT'S"), (Ids{'I', 'T', '\'', 'S'}));  // split, but no "' S" merge
}

TEST_F(TokenizerTest, NewlineRuns) {
  EXPECT_EQ(encode("\n"), (Ids{10}));
  EXPECT_EQ(encode("\n\n"), (Ids{268}));
  EXPECT_EQ(encode("\n\n\n"), (Ids{268, 10}));
  EXPECT_EQ(encode("a\n\nb"), (Ids{'a', 268, 'b'}));
  // "\s*[\r\n]+" takes the spaces before the newlines with them: one piece
  // "ĠĠĊĊ", where "Ċ Ċ" (rank 12) merges before "Ġ Ġ" (rank 13).
  EXPECT_EQ(encode("a  \n\nb"), (Ids{'a', 269, 268, 'b'}));
}

TEST_F(TokenizerTest, AddedTokensAreLeftmostLongest) {
  EXPECT_EQ(encode("<|im_start|>"), (Ids{301}));
  EXPECT_EQ(encode("<|im_end|>"), (Ids{302}));
  EXPECT_EQ(encode("<|imx"), (Ids{303, 'x'}));
  EXPECT_EQ(encode("<|im_end"), (Ids{303, '_', 'e', 'n', 'd'}));
  EXPECT_EQ(encode("<|im<|im_start|>"), (Ids{303, 301}));
}

TEST_F(TokenizerTest, TextAroundAddedTokens) {
  EXPECT_EQ(encode("<|im_start|>user\nhello<|im_end|>\n"), (Ids{301, 'u', 's', 'e', 'r', 10, 264, 302, 10}));
  // The text after a token is pre-tokenized on its own: " world" keeps its space.
  EXPECT_EQ(encode("hello<tool_call> world</tool_call>"), (Ids{264, 304, 260, 305}));
  EXPECT_EQ(encode("x<|endoftext|><|endoftext|>"), (Ids{'x', 300, 300}));
}

TEST_F(TokenizerTest, LstripAndRstripSwallowWhitespace) {
  EXPECT_EQ(encode("a  <mask>b"), (Ids{'a', 306, 'b'}));   // <mask> has lstrip
  EXPECT_EQ(encode("a<sep> \t b"), (Ids{'a', 307, 'b'}));  // <sep> has rstrip
  EXPECT_EQ(encode("a <sep>"), (Ids{'a', ' ', 307}));      // ...but not lstrip
}

TEST_F(TokenizerTest, EncodeOrdinaryTreatsAddedTokensAsText) {
  Result<Ids> ids = m_tok.encode_ordinary("<|im_end|>");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (Ids{'<', '|', 'i', 'm', '_', 'e', 'n', 'd', '|', '>'}));
}

TEST_F(TokenizerTest, InvalidUtf8BytesAreEncodedRaw) {
  EXPECT_EQ(encode("\xff"), (Ids{0xFF}));
  EXPECT_EQ(encode("a\xff\xfe b"), (Ids{'a', 0xFF, 0xFE, ' ', 'b'}));
  EXPECT_EQ(encode("\xE2\x82"), (Ids{0xE2, 0x82}));  // a truncated "€"
  EXPECT_EQ(m_tok.decode(Ids{0xFF}), "\xEF\xBF\xBD");
  EXPECT_EQ(m_tok.decode(Ids{'a', 0xFF, 0xFE, 'b'}),
            "a\xEF\xBF\xBD\xEF\xBF\xBD"
            "b");
  // A truncated sequence is one maximal subpart: one U+FFFD.
  EXPECT_EQ(m_tok.decode(Ids{0xE2, 0x82, 'x'}), "\xEF\xBF\xBDx");
  EXPECT_EQ(m_tok.decode(Ids{0xE2, 0x82, 0xAC}), "\xE2\x82\xAC");
}

TEST_F(TokenizerTest, EmojiAreFourByteTokens) {
  EXPECT_EQ(encode("\xF0\x9F\x98\x80"), (Ids{0xF0, 0x9F, 0x98, 0x80}));
  EXPECT_EQ(encode("hello\xF0\x9F\x98\x80!"), (Ids{264, 0xF0, 0x9F, 0x98, 0x80, '!'}));
}

TEST_F(TokenizerTest, DecodeSkipsOnlySpecialTokens) {
  Ids ids = {301, 'u', 10, 304, 264, 305, 302};
  EXPECT_EQ(m_tok.decode(ids), "<|im_start|>u\n<tool_call>hello</tool_call><|im_end|>");
  EXPECT_EQ(m_tok.decode(ids, /*skip_special=*/true), "u\n<tool_call>hello</tool_call>");
  EXPECT_EQ(m_tok.decode(Ids{-1, 280, 99999, 264}), "hello");  // unknown ids are skipped
}

TEST_F(TokenizerTest, RoundTrips) {
  for (std::string_view text : {
           "",
           "hello world",
           "Hello, World! It's 2024-06-01 12:34:56.",
           "  leading and trailing  ",
           "tabs\tand\r\nwindows\r\n\r\nlines\n\n\n\nend",
           "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C",               // 你好，世界
           "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 \xD0\xBC\xD0\xB8\xD1\x80",  // Привет мир
           "caf\xC3\xA9 na\xC3\xAFve \xC3\xBC"
           "ber",
           "emoji \xF0\x9F\x98\x80\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD done",
           "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>",
           "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}\n</tool_call>",
           "numbers 0123456789 \xD9\xA3\xD9\xA4 \xE2\x85\xA0",  // Arabic-Indic digits, Roman numeral
           "punct !!! ??? ... ;;; \"quoted\" (paren) [brackets] {braces}",
           "\x01\x02\x7F control",
           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
       }) {
    Result<Ids> ids = m_tok.encode(text);
    ASSERT_TRUE(ids.ok()) << text;
    EXPECT_EQ(m_tok.decode(*ids), text);
  }
}

TEST_F(TokenizerTest, LongTextRoundTripsAndRepeatsFromCache) {
  std::string text;
  for (int i = 0; i < 400; ++i) text += "hello world, it's line " + std::to_string(i) + "\n";
  Ids first = encode(text);
  EXPECT_EQ(m_tok.decode(first), text);
  EXPECT_EQ(encode(text), first);  // second pass is served from the word cache
}

TEST_F(TokenizerTest, Lookups) {
  EXPECT_EQ(m_tok.vocab_size(), 308);
  EXPECT_EQ(m_tok.token_id("Ġworld"), 260);
  EXPECT_EQ(m_tok.token_id("<|im_end|>"), 302);
  EXPECT_EQ(m_tok.token_id("nope"), std::nullopt);
  EXPECT_EQ(m_tok.id_to_token(260), "Ġworld");
  EXPECT_EQ(m_tok.id_to_token(302), "<|im_end|>");
  EXPECT_EQ(m_tok.id_to_token(290), "");
  EXPECT_EQ(m_tok.token_bytes(260), " world");
  EXPECT_TRUE(m_tok.is_special(302));
  EXPECT_TRUE(m_tok.is_added(304));
  EXPECT_FALSE(m_tok.is_special(304));  // <tool_call> is added but not special
  EXPECT_FALSE(m_tok.is_added(260));
  EXPECT_EQ(m_tok.added_tokens().size(), 8u);
  EXPECT_TRUE(m_tok.wants_nfc());
}

TEST_F(TokenizerTest, NfcNormalizesDecomposedText) {
  if (!nfc_available()) GTEST_SKIP() << "built without ICU: NFC is the identity";
  // "e" + U+0301 COMBINING ACUTE is "é" (U+00E9) after NFC.
  EXPECT_EQ(encode("e\xCC\x81"), (Ids{0xC3, 0xA9}));
  // Added tokens are matched before normalization and kept as they are.
  EXPECT_EQ(encode("<|im_end|>e\xCC\x81"), (Ids{302, 0xC3, 0xA9}));
}

TEST(TokenizerGpt2Test, ByteLevelRegexKeepsDigitRuns) {
  Tokenizer tok = make(test::MergeForm::kPairs, test::gpt2_pre_tokenizer());
  auto enc = [&](std::string_view s) { return *tok.encode(s); };
  EXPECT_EQ(enc("333"), (Ids{271, '3'}));  // " ?\p{N}+": one piece, then merged
  EXPECT_EQ(enc("hello world"), (Ids{264, 260}));
  EXPECT_EQ(enc("it's"), (Ids{'i', 't', 270}));
  EXPECT_EQ(tok.decode(enc("a 333 b\n\n")), "a 333 b\n\n");
}

TEST(TokenizerStreamTest, HoldsBackIncompleteUtf8) {
  Tokenizer tok = make();
  TokenStreamDecoder stream(tok);
  EXPECT_EQ(stream.push(264), "hello");
  EXPECT_EQ(stream.push(0xF0), "");
  EXPECT_EQ(stream.push(0x9F), "");
  EXPECT_EQ(stream.push(0x98), "");
  EXPECT_EQ(stream.push(0x80), "\xF0\x9F\x98\x80");
  EXPECT_EQ(stream.push(0xE2), "");
  EXPECT_EQ(stream.push('x'), "\xEF\xBF\xBDx");  // the sequence broke: U+FFFD
  EXPECT_EQ(stream.push(0xE2), "");
  EXPECT_EQ(stream.finish(), "\xEF\xBF\xBD");
}

TEST(TokenizerStreamTest, ConcatenationEqualsDecode) {
  Tokenizer tok = make();
  Ids ids = *tok.encode("a\xF0\x9F\x98\x80 b <|im_end|>\xC3\xA9\xFF\xE2\x82 c \xE2\x82\xAC");
  for (bool skip : {false, true}) {
    TokenStreamDecoder stream(tok, skip);
    std::string streamed;
    for (int32_t id : ids) streamed += stream.push(id);
    streamed += stream.finish();
    EXPECT_EQ(streamed, tok.decode(ids, skip));
  }
}

}  // namespace
}  // namespace mb::inference
