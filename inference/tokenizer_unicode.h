#pragma once
// Unicode helpers for the byte-level BPE tokenizer: GPT-2's byte-to-unicode
// table, UTF-8 decoding with the "maximal subpart" replacement rule that
// Rust's from_utf8_lossy and Python's errors="replace" both follow, and NFC.
//
// All functions are pure and thread-safe.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mb::inference {

// GPT-2's table (docs/formats/tokenizer.md §2): bytes 0x21-0x7E, 0xA1-0xAC and 0xAE-0xFF map to
// the code point of the same value; the other 68 bytes, in increasing order,
// map to U+0100, U+0101, ...
char32_t byte_to_code_point(uint8_t byte);
// The inverse: the byte whose character is `cp`, or -1 when `cp` is not in
// the table.
int code_point_to_byte(char32_t cp);

// Appends the UTF-8 encoding of `cp` (REQUIRES: cp <= 0x10FFFF).
void append_utf8(std::string& out, char32_t cp);

// Replaces each byte of `bytes` by the UTF-8 of its table character: the
// form in which byte-level vocabularies store tokens ("Ġworld").
std::string byte_level_encode(std::string_view bytes);
// The inverse, for a token string: characters in the table become their
// byte; any other character is copied as its own UTF-8 (what the ByteLevel
// decoder does with added tokens and foreign vocabularies).
std::string byte_level_decode(std::string_view token);

// Decodes one UTF-8 sequence at s[i]. Returns its length (> 0) and sets
// `cp` when it is well formed; otherwise returns minus the length of the
// maximal subpart (the longest prefix of a well-formed sequence found there,
// at least one byte) that a lossy decoder replaces with one U+FFFD.
// REQUIRES: i < s.size().
int decode_utf8(std::string_view s, size_t i, char32_t& cp);

// `bytes` as valid UTF-8, each maximal invalid subpart replaced by U+FFFD.
std::string utf8_lossy(std::string_view bytes);

// Length of the trailing bytes of `s` that form an incomplete but so far
// valid UTF-8 sequence (0 to 3): text a stream must hold back, because the
// next bytes may complete it.
size_t utf8_incomplete_tail(std::string_view s);

// Unicode White_Space (what Rust's char::is_whitespace tests), used for the
// lstrip/rstrip of added tokens.
bool is_unicode_whitespace(char32_t cp);

// Unicode NFC of `text`. Only maximal runs of valid UTF-8 are normalized;
// invalid bytes are kept as they are, so raw bytes still reach the byte-level
// BPE. When the library was built without ICU (MODELBUILD_HAVE_ICU unset) this
// returns `text` unchanged and nfc_available() is false.
std::string nfc_normalize(std::string_view text);
bool nfc_available();

}  // namespace mb::inference
