#include "inference/tokenizer_unicode.h"

#include <gtest/gtest.h>

#include <set>

namespace mb::inference {
namespace {

TEST(TokenizerUnicodeTest, ByteTableExamplesFromTheSpec) {
  // docs/formats/tokenizer.md §2.
  EXPECT_EQ(byte_to_code_point(0x00), U'\u0100');  // Ā
  EXPECT_EQ(byte_to_code_point(0x09), U'\u0109');  // ĉ
  EXPECT_EQ(byte_to_code_point(0x0A), U'\u010A');  // Ċ
  EXPECT_EQ(byte_to_code_point(0x0D), U'\u010D');  // č
  EXPECT_EQ(byte_to_code_point(0x20), U'\u0120');  // Ġ
  EXPECT_EQ(byte_to_code_point(0x7F), U'\u0121');  // ġ
  EXPECT_EQ(byte_to_code_point(0x80), U'\u0122');  // Ģ
  EXPECT_EQ(byte_to_code_point(0xA0), U'\u0142');  // ł
  EXPECT_EQ(byte_to_code_point(0xAD), U'\u0143');  // Ń
  EXPECT_EQ(byte_to_code_point('!'), U'!');
  EXPECT_EQ(byte_to_code_point('~'), U'~');
  EXPECT_EQ(byte_to_code_point(0xFF), U'\u00FF');  // ÿ
}

TEST(TokenizerUnicodeTest, ByteTableIsABijection) {
  std::set<char32_t> seen;
  for (int b = 0; b < 256; ++b) {
    char32_t cp = byte_to_code_point(static_cast<uint8_t>(b));
    EXPECT_TRUE(seen.insert(cp).second);
    EXPECT_EQ(code_point_to_byte(cp), b);
  }
  EXPECT_EQ(code_point_to_byte(U' '), -1);  // space itself is not in the table
  EXPECT_EQ(code_point_to_byte(U'\u0144'), -1);
  EXPECT_EQ(code_point_to_byte(U'\u4F60'), -1);
}

TEST(TokenizerUnicodeTest, ByteLevelEncodeAndDecode) {
  EXPECT_EQ(byte_level_encode(" world\n"), "\xC4\xA0world\xC4\x8A");  // "Ġworld" + "Ċ"
  EXPECT_EQ(byte_level_decode("\xC4\xA0world\xC4\x8A"), " world\n");
  // "é" is C3 A9, stored as "Ã©".
  EXPECT_EQ(byte_level_encode("\xC3\xA9"), "\xC3\x83\xC2\xA9");
  // Characters outside the table are copied as their own UTF-8.
  EXPECT_EQ(byte_level_decode("a \xE4\xBD\xA0"), "a \xE4\xBD\xA0");
  for (int b = 0; b < 256; ++b) {
    std::string one(1, static_cast<char>(b));
    EXPECT_EQ(byte_level_decode(byte_level_encode(one)), one);
  }
}

TEST(TokenizerUnicodeTest, LossyDecodingReplacesMaximalSubparts) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(utf8_lossy("plain"), "plain");
  EXPECT_EQ(utf8_lossy("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");
  EXPECT_EQ(utf8_lossy("\xF0\x9F\x98"), fffd);                           // truncated: one subpart
  EXPECT_EQ(utf8_lossy("\xFF\xFE"), fffd + fffd);                        // never valid: one each
  EXPECT_EQ(utf8_lossy("\xE0\x80"), fffd + fffd);                        // E0 needs A0..BF next
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), fffd + fffd + fffd);             // a surrogate
  EXPECT_EQ(utf8_lossy("\xC0\xAF"), fffd + fffd);                        // overlong
  EXPECT_EQ(utf8_lossy("\xF4\x90\x80\x80"), fffd + fffd + fffd + fffd);  // > U+10FFFF
  EXPECT_EQ(utf8_lossy("a\xE2\x82z"), "a" + fffd + "z");
}

TEST(TokenizerUnicodeTest, IncompleteTail) {
  EXPECT_EQ(utf8_incomplete_tail(""), 0u);
  EXPECT_EQ(utf8_incomplete_tail("abc"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("a\xF0"), 1u);
  EXPECT_EQ(utf8_incomplete_tail("a\xF0\x9F"), 2u);
  EXPECT_EQ(utf8_incomplete_tail("a\xF0\x9F\x98"), 3u);
  EXPECT_EQ(utf8_incomplete_tail("a\xF0\x9F\x98\x80"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("a\xE0\x80"), 0u);  // can never complete
  EXPECT_EQ(utf8_incomplete_tail("a\xFF"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("\x80\x80"), 0u);
}

TEST(TokenizerUnicodeTest, Whitespace) {
  EXPECT_TRUE(is_unicode_whitespace(U' '));
  EXPECT_TRUE(is_unicode_whitespace(U'\n'));
  EXPECT_TRUE(is_unicode_whitespace(U'\u3000'));
  EXPECT_TRUE(is_unicode_whitespace(U'\u00A0'));
  EXPECT_FALSE(is_unicode_whitespace(U'x'));
  EXPECT_FALSE(is_unicode_whitespace(U'\u200B'));  // zero width space is not White_Space
}

TEST(TokenizerUnicodeTest, Nfc) {
  if (!nfc_available()) {
    EXPECT_EQ(nfc_normalize("e\xCC\x81"), "e\xCC\x81");
    GTEST_SKIP() << "built without ICU: NFC is the identity";
  }
  EXPECT_EQ(nfc_normalize("e\xCC\x81"), "\xC3\xA9");
  EXPECT_EQ(nfc_normalize("plain ascii"), "plain ascii");
  // Hangul jamo compose to a syllable: U+1100 U+1161 -> U+AC00.
  EXPECT_EQ(nfc_normalize("\xE1\x84\x80\xE1\x85\xA1"), "\xEA\xB0\x80");
  // Invalid bytes are kept; the valid runs around them are normalized.
  EXPECT_EQ(nfc_normalize("e\xCC\x81\xFF"
                          "e\xCC\x81"),
            "\xC3\xA9\xFF\xC3\xA9");
}

}  // namespace
}  // namespace mb::inference
