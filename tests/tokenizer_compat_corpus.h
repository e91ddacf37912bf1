#pragma once
// The strings tests/tokenizer_compat_test.cc encodes with modelbuild's
// tokenizer and with the reference one: each with the category it stands for,
// so a failure says what kind of text broke. Every string is valid UTF-8
// (the reference takes JavaScript strings); the edges of UTF-8 are covered by
// the code points next to them (U+007F/U+0080, U+FFFD, U+10FFFF, ...).
//
// Hand-written cases first, then generated ones (every whitespace and control
// character in a few positions, every added token in a few contexts), then
// pseudo-random mixtures from a fixed seed. Code points whose meaning depends
// on the Unicode version are kept out of the generated and random strings:
// they are the hand-written "unicode-version" cases, whose differences
// docs/formats/tokenizer.md §8 lists.
#include <cstdint>
#include <string>
#include <vector>

namespace mb::tokenizer_compat {

struct Case {
  std::string category;
  std::string text;
};

// UTF-8 of one code point.
std::string cp(char32_t c);

// Every case, in a fixed order (the order of the test's failure messages).
std::vector<Case> corpus();

}  // namespace mb::tokenizer_compat
