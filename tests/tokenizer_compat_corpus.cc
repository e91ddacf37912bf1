// The comparison corpus of tests/tokenizer_compat_test.cc
// (tests/tokenizer_compat_corpus.h).
#include "tests/tokenizer_compat_corpus.h"

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace mb::tokenizer_compat {

std::string cp(char32_t c) {
  std::string out;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
  return out;
}

namespace {

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

// Qwen's added tokens (tokenizer.json `added_tokens`), in id order.
const std::vector<std::string>& added_tokens() {
  static const std::vector<std::string> kTokens = {
      "<|endoftext|>",  "<|im_start|>",   "<|im_end|>",      "<|object_ref_start|>", "<|object_ref_end|>",
      "<|box_start|>",  "<|box_end|>",    "<|quad_start|>",  "<|quad_end|>",         "<|vision_start|>",
      "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>",   "<|video_pad|>",        "<tool_call>",
      "</tool_call>",   "<|fim_prefix|>", "<|fim_middle|>",  "<|fim_suffix|>",       "<|fim_pad|>",
      "<|repo_name|>",  "<|file_sep|>",   "<tool_response>", "</tool_response>",     "<think>",
      "</think>"};
  return kTokens;
}

void add_all(std::vector<Case>& out, const std::string& category, const std::vector<std::string>& texts) {
  for (const std::string& t : texts) out.push_back({category, t});
}

void prose_and_code(std::vector<Case>& out) {
  add_all(out, "ascii",
          {"Hello world",
           " Hello world",
           "Hello, world!",
           " Hello World!",
           "Hello",
           "hello",
           "HELLO",
           "a",
           "A b c",
           "The quick brown fox jumps over the lazy dog.",
           "It's, I'm, we're, they've, he'll, she'd, don't",
           "IT'S I'M WE'RE THEY'VE HE'LL SHE'D DON'T",
           "'s's 'S'T 'Re 'vE 'lL",
           "rock 'n' roll",
           "o'clock",
           "Mr. O'Neil's dog's bone.",
           "a.b,c;d:e!f?g",
           "...!!!???",
           "--- *** ___ ### @@@",
           "(a) [b] {c} <d>",
           "\"quoted\" 'single' `back`",
           "email@example.com https://example.org/path?q=1&r=2#frag",
           "C:\\Users\\name\\file.txt",
           "snake_case camelCase PascalCase kebab-case SCREAMING_CASE",
           "ied 4 \xC2\xBD months",
           "F\xC3\xBChrer",
           "na\xC3\xAFve caf\xC3\xA9 r\xC3\xA9sum\xC3\xA9 co\xC3\xB6perate",
           "Stra\xC3\x9F"
           "e \xC3\x9F\xC3\x9F \xE1\xBA\x9E",
           "\xC3\x85ngstr\xC3\xB6m \xE2\x84\xAB",
           "\xCE\x9A\xCE\xB1\xCE\xBB\xCE\xB7\xCE\xBC\xCE\xAD\xCF\x81\xCE\xB1 \xCE\xBA\xCF\x8C\xCF\x83\xCE\xBC\xCE\xB5",
           "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82, \xD0\xBC\xD0\xB8\xD1\x80!"});
  add_all(
      out, "code",
      {"int main() {\n  return 0;\n}\n", "def f(x):\n    return x * 2\n\n\nprint(f(3))\n",
       "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
       "#include <stdio.h>\n#define MAX(a, b) ((a) > (b) ? (a) : (b))\n",
       "{\"key\": [1, 2.5, -3e10, true, null], \"nested\": {\"a\": \"b\"}}",
       "SELECT * FROM t WHERE x >= 10 AND y <> 'z';",
       "if [ -f \"$f\" ]; then echo \"${f%.txt}\" | sed -e 's/a/b/g' >> out.log 2>&1; fi",
       "const f = async (x) => { await g(x?.y ?? 0); };", "x+=1;y-=2;z*=3;w/=4;v%=5;u**=6;t//=7",
       "a && b || !c ^ d & e | f ~ g << 2 >> 3 >>> 4", "<div class=\"a\">&lt;b&gt; &amp; &#x27;</div>",
       "    indented\n        more\n\tTab\n\t\tTabs\n", "line1\r\nline2\r\n\r\nline3", "trailing   \n   leading",
       "// comment\n/* block\n * comment */\n", "0x1F 0b1010 0o777 1_000_000 3.14159e-10",
       "fn main() -> Result<(), Box<dyn Error>> { Ok(()) }", "=begin\n=end\n__END__", "```python\nprint('hi')\n```\n"});
}

void numbers_and_scripts(std::vector<Case>& out) {
  add_all(out, "digits",
          {"0",
           "3",
           "33",
           "333",
           "1234567890",
           "12345678901234567890123",
           "3.14",
           "-42",
           "+7",
           "1,000,000",
           "2024-06-01T12:34:56Z",
           "v1.2.3-rc.4",
           "1st 2nd 3rd 4th",
           "10%",
           "$99.99",
           "\xE2\x82\xAC"
           "5",
           "x2 y10 z100",
           "\xD9\xA0\xD9\xA1\xD9\xA2\xD9\xA3 \xDB\xB4\xDB\xB5",
           "\xEF\xBC\x91\xEF\xBC\x92\xEF\xBC\x93",
           "\xC2\xB2\xC2\xB3\xC2\xB9 x\xC2\xB2",
           "\xE2\x85\xA0\xE2\x85\xA1\xE2\x85\xAB",
           "\xC2\xBD \xC2\xBC \xE2\x85\x93",
           "\xE0\xA5\xA7\xE0\xA5\xA8\xE0\xA5\xA9",
           "\xE2\x91\xA0\xE2\x91\xA1"});
  add_all(
      out, "cjk",
      {"\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C\xEF\xBC\x81",
       "\xE6\x88\x91\xE7\x88\xB1\xE5\x8C\x97\xE4\xBA\xAC\xE5\xA4\xA9\xE5\xAE\x89\xE9\x97\xA8",
       "\xE4\xBB\x8A\xE5\xA4\xA9\xE5\xA4\xA9\xE6\xB0\x94\xE5\xBE\x88\xE5\xA5\xBD\xE3\x80\x82\xE6\x88\x91\xE4\xBB\xAC"
       "\xE5"
       "\x8E\xBB\xE5\x85\xAC\xE5\x9B\xAD\xE5\x90\xA7\xEF\xBC\x9F",
       "\xE3\x81\x93\xE3\x82\x93\xE3\x81\xAB\xE3\x81\xA1\xE3\x81\xAF\xE4\xB8\x96\xE7\x95\x8C",
       "\xE3\x82\xAB\xE3\x82\xBF\xE3\x82\xAB\xE3\x83\x8A \xEF\xBD\xB6\xEF\xBE\x80\xEF\xBD\xB6\xEF\xBE\x85",
       "\xEC\x95\x88\xEB\x85\x95\xED\x95\x98\xEC\x84\xB8\xEC\x9A\x94 \xEC\x84\xB8\xEA\xB3\x84",
       "\xE4\xB8\xAD\xE6\x96\x87 English \xE6\xB7\xB7\xE5\x90\x88 123 \xE6\x96\x87\xE6\x9C\xAC",
       "\xE3\x80\x8C\xE5\xBC\x95\xE7\x94\xA8\xE3\x80\x8D\xE3\x80\x8E\xE4\xBA\x8C\xE9\x87\x8D\xE3\x80\x8F\xE3\x80\x90"
       "\xE6\x8B\xAC\xE5\x8F\xB7\xE3\x80\x91",
       "\xF0\xA0\x80\x80\xF0\xA0\x80\x81\xF0\xAA\x9C\x80", "\xE4\xBD\xA0\xE5\xA5\xBD\n\xE4\xB8\x96\xE7\x95\x8C\n\n",
       " \xE4\xBD\xA0 \xE5\xA5\xBD  \xE4\xB8\x96\xE7\x95\x8C",
       "\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB"});  // decomposed Hangul jamo (NFC composes them)
  add_all(
      out, "rtl",
      {"\xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7 \xD8\xA8\xD8\xA7\xD9\x84\xD8\xB9\xD8\xA7\xD9\x84\xD9\x85",
       "\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D \xD7\xA2\xD7\x95\xD7\x9C\xD7\x9D", "abc \xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D def",
       "\xE2\x80\x8F\xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7\xE2\x80\x8E hello",
       "\xE2\x80\xAB\xD7\xA2\xD7\x91\xD7\xA8\xD7\x99\xD7\xAA\xE2\x80\xAC \xE2\x81\xA7x\xE2\x81\xA9",
       "\xD9\x85\xD9\x8E\xD8\xB1\xD9\x92\xD8\xAD\xD9\x8E\xD8\xA8\xD9\x8B\xD8\xA7",
       "\xD9\xA1\xD9\xA2\xD9\xA3 \xD8\xB4\xD8\xA7\xD8\xB1\xD8\xB9"});
}

void emoji_and_marks(std::vector<Case>& out) {
  add_all(out, "emoji",
          {"\xF0\x9F\x98\x80", "hi \xF0\x9F\x98\x80!", "\xF0\x9F\x98\x80\xF0\x9F\x98\x83\xF0\x9F\x98\x84",
           "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7\xE2\x80\x8D\xF0\x9F\x91\xA6",
           "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD \xF0\x9F\x91\x8D\xF0\x9F\x8F\xBF",
           "\xF0\x9F\x87\xAF\xF0\x9F\x87\xB5\xF0\x9F\x87\xBA\xF0\x9F\x87\xB8",
           "1\xEF\xB8\x8F\xE2\x83\xA3 #\xEF\xB8\x8F\xE2\x83\xA3",
           "\xE2\x9D\xA4\xEF\xB8\x8F \xE2\x9D\xA4\xEF\xB8\x8E \xE2\x9D\xA4",
           "\xF0\x9F\x8F\xB3\xEF\xB8\x8F\xE2\x80\x8D\xF0\x9F\x8C\x88",
           "\xF0\x9F\x8F\xB4\xF3\xA0\x81\xA7\xF3\xA0\x81\xA2\xF3\xA0\x81\xB3\xF3\xA0\x81\xA3\xF3\xA0\x81\xB4\xF3\xA0"
           "\x81\xBF",
           "\xF0\x9F\xA7\x91\xE2\x80\x8D\xF0\x9F\x92\xBB wrote \xF0\x9F\x92\xBB code",
           "\xE2\x98\x95\xE2\x9C\x85\xE2\xAD\x90",
           "a\xE2\x80\x8D"
           "b\xE2\x80\x8C"
           "c",
           "\xF0\x9F\x98\x80 \xF0\x9F\x98\x80  \xF0\x9F\x98\x80"});
  add_all(
      out, "combining",
      {"e\xCC\x81", "cafe\xCC\x81", "a\xCC\x88o\xCC\x88u\xCC\x88", "A\xCC\x8A", "n\xCC\x83", "\xC3\xA9 vs e\xCC\x81",
       "a\xCC\xA3\xCC\x82", "a\xCC\x82\xCC\xA3", "q\xCC\x87\xCC\xA3", "\xE1\xBB\x87 e\xCC\xA3\xCC\x82",
       "Z\xCD\x91\xCD\x97\xCD\x86\xCC\x91"
       "a\xCC\xB7\xCC\x9B"
       "l\xCD\x8Cg\xCC\xB4o\xCC\xB8",
       "\xCC\x81"
       "start",
       " \xCC\x81x", "\xE0\xA4\xA8\xE0\xA4\xAE\xE0\xA4\xB8\xE0\xA5\x8D\xE0\xA4\xA4\xE0\xA5\x87",
       "\xE0\xB8\xAA\xE0\xB8\xA7\xE0\xB8\xB1\xE0\xB8\xAA\xE0\xB8\x94\xE0\xB8\xB5",
       "\xE2\x84\xAB \xE2\x84\xA6 \xE2\x84\xAA", "\xEF\xAC\x81 \xEF\xAC\x80", "\xE1\xBE\xB3\xCD\x82"});
}

void special_tokens(std::vector<Case>& out) {
  add_all(out, "chatml",
          {"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n"
           "<|im_start|>assistant\nHello! How can I help?<|im_end|>\n",
           "<|im_start|>user\n\xE4\xBD\xA0\xE5\xA5\xBD<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
           "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get\", \"arguments\": {\"x\": 1}}\n</tool_call><|im_end|>",
           "<|im_start|>user\n<tool_response>\n{\"ok\": true}\n</tool_response><|im_end|>\n",
           "<|im_start|>user\n  spaces before<|im_end|>  after",
           "<|im_end|><|im_end|><|im_end|>",
           "<|im_start|><|im_end|>",
           "x<|endoftext|>y",
           "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>",
           "<|repo_name|>r<|file_sep|>a.py\nprint(1)",
           "<|im_start|",
           "<|im_start|x",
           "<|im_start||>",
           "< |im_end|>",
           "<<|im_end|>>",
           "|<|im_end|>|",
           "<|IM_END|>",
           "<|im_end|>\n\n",
           "\n<|im_end|>\n",
           " <|im_end|> "});
}

void unicode_edges(std::vector<Case>& out) {
  add_all(out, "utf8-edges",
          {cp(0x7F),
           cp(0x80),
           "a" + cp(0x7F) + cp(0x80) + "b",
           cp(0x7FF),
           cp(0x800),
           cp(0xFFFD),
           "a" + cp(0xFFFD) + "b",
           cp(0xFFFD) + cp(0xFFFD),
           cp(0xD7FF),
           cp(0xE000),
           cp(0xF8FF) + "x",
           cp(0xFFFE),
           cp(0xFFFF),
           cp(0x10000),
           cp(0xFFFFF),
           cp(0x10FFFF),
           "x" + cp(0x10FFFF) + " y",
           cp(0xFEFF) + "bom",
           "a " + cp(0xFEFF) + "b",
           cp(0x200B) + "zero" + cp(0x200B) + " width",
           cp(0x00AD) + "soft" + cp(0x00AD),
           cp(0x2060) + "wj",
           cp(0xE0001) + cp(0xE0041),
           "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"});
  // Characters whose class or composition differs between the Unicode
  // versions of PCRE2 10.42 (14.0), ICU 72 (15.0) and node's ICU: the
  // exceptions of docs/formats/tokenizer.md §8 come from here.
  add_all(out, "unicode-version",
          {" " + cp(0x180E) + "b",
           "a" + cp(0x180E) + "b",
           cp(0x180E),
           "x " + cp(0x180E) + " y",
           " " + cp(0x11F04) + cp(0x11F05),  // Kawi letters (Unicode 15.0)
           " " + cp(0x1E4D0) + cp(0x1E4D1),  // Nag Mundari letters (15.0)
           " " + cp(0x31350) + cp(0x31351),  // CJK Extension H (15.0)
           " " + cp(0x2EBF0) + cp(0x2EBF1),  // CJK Extension I (15.1)
           " " + cp(0x10D50) + cp(0x10D51),  // Garay letters (16.0)
           " " + cp(0x16100) + cp(0x16101),  // Gurung Khema letters (16.0)
           "a" + cp(0x11F04) + "!",
           cp(0x11F04) + "\n",
           "x" + cp(0x11F04) + cp(0x11F05) + "y",
           cp(0x11F50) + cp(0x11F51) + cp(0x11F52),        // Kawi digits (15.0)
           "1" + cp(0x1E4F0) + "2" + cp(0x1E4F1),          // Nag Mundari digits (15.0)
           cp(0x10D40) + cp(0x10D41) + " " + cp(0x10D42),  // Garay digits (16.0)
           "x" + cp(0x10D50) + cp(0x10D51) + ".",
           "it'" + cp(0x17F) + " 'S",
           "we'" + cp(0x17F) + "t",
           cp(0x1FACE),
           cp(0x1FACE) + cp(0x1FAE9) + "a",
           cp(0x2FFC) + cp(0x31EF),
           cp(0x11382) + cp(0x113C9),    // Tulu-Tigalari: composes in NFC since 16.0
           cp(0x16D67) + cp(0x16D67)});  // Kirat Rai: composes in NFC since 16.0
}

// The whitespace characters of Unicode's White_Space property, plus CRLF.
const std::vector<std::string>& white_space() {
  static const std::vector<std::string> kSpaces = [] {
    std::vector<std::string> s = {" ", "\t", "\n", "\r", "\r\n", "\v", "\f"};
    for (char32_t c : {0x85, 0xA0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008,
                       0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000})
      s.push_back(cp(c));
    return s;
  }();
  return kSpaces;
}

void generated(std::vector<Case>& out) {
  for (const std::string& w : white_space()) {
    add_all(out, "whitespace",
            {"a" + w + "b", "a" + w + w + " b", w + "x", "x" + w, w + w + w, " " + w + "hi", w + "\n", "1" + w + "2"});
  }
  for (int n : {1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 64}) {
    out.push_back({"whitespace-run", repeat(" ", n) + "x"});
    out.push_back({"whitespace-run", "x" + repeat(" ", n) + "\n" + repeat("\t", n % 5) + "y"});
  }
  // std::string("a") + …, not "a" + …: GCC 12 -O3 warns a false -Wrestrict.
  for (char32_t c = 0; c < 0x20; ++c) out.push_back({"control", std::string("a") + cp(c) + "b " + cp(c) + cp(c)});
  for (char32_t c = 0x7F; c <= 0x9F; ++c) out.push_back({"control", cp(c) + "x " + cp(c)});
  for (const std::string& t : added_tokens()) {
    add_all(out, "added-token", {t, "x" + t + "y", " " + t + " ", t + t, t.substr(0, t.size() - 1), "\n" + t + "\n\n"});
  }
}

void long_runs(std::vector<Case>& out) {
  add_all(out, "long",
          {repeat(" ", 5000), repeat("a", 3000), repeat("9", 2000), repeat("\n", 1000), repeat("\t ", 700),
           repeat("\xF0\x9F\x98\x80", 500), repeat("\xE4\xBD\xA0\xE5\xA5\xBD", 600), repeat("<|im_end|>", 100),
           repeat("ab", 2000), repeat("the ", 1500), repeat("e\xCC\x81", 400), repeat("!?", 1200),
           repeat("int x = 0;\n    ", 300), repeat(" \n", 800), repeat(cp(0x3000), 300)});
}

// Deterministic mixtures of short atoms. The generator is used directly (not
// through a distribution, whose output is implementation-defined) so every
// platform builds the same strings.
void random_mixtures(std::vector<Case>& out) {
  static const std::array<const char*, 40> kAtoms = {"the",
                                                     " cat",
                                                     "'s",
                                                     "'LL",
                                                     "  ",
                                                     "\n",
                                                     "\n\n",
                                                     "\t",
                                                     "\r\n",
                                                     "42",
                                                     "7",
                                                     "3.5",
                                                     ".",
                                                     ",",
                                                     "!!",
                                                     "()",
                                                     "{",
                                                     "}",
                                                     "_",
                                                     "-",
                                                     "\xE4\xBD\xA0",
                                                     "\xE5\xA5\xBD",
                                                     "\xE3\x81\x82",
                                                     "\xEC\x95\x88",
                                                     "\xD8\xB9",
                                                     "\xD7\xA9",
                                                     "\xF0\x9F\x98\x80",
                                                     "\xE2\x80\x8D",
                                                     "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",
                                                     "e\xCC\x81",
                                                     "\xCC\x88",
                                                     "\xC2\xA0",
                                                     "\xE3\x80\x80",
                                                     "<|im_end|>",
                                                     "<tool_call>",
                                                     "<|im_start|>",
                                                     "\x01",
                                                     "\x7F",
                                                     "\xC2\x85",
                                                     "\xEF\xBF\xBD"};
  std::mt19937 gen(20240601);
  for (int i = 0; i < 120; ++i) {
    std::string text;
    const uint32_t atoms = 1 + gen() % 24;
    for (uint32_t k = 0; k < atoms; ++k) text += kAtoms[gen() % kAtoms.size()];
    out.push_back({"random", text});
  }
}

}  // namespace

std::vector<Case> corpus() {
  std::vector<Case> out;
  prose_and_code(out);
  numbers_and_scripts(out);
  emoji_and_marks(out);
  special_tokens(out);
  unicode_edges(out);
  generated(out);
  long_runs(out);
  random_mixtures(out);
  return out;
}

}  // namespace mb::tokenizer_compat
