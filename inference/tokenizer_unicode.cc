#include "inference/tokenizer_unicode.h"

#include <array>

#if defined(MODELBUILD_HAVE_ICU)
#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>
#endif

namespace mb::inference {
namespace {

bool maps_to_itself(int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE); }

struct ByteTable {
  std::array<char32_t, 256> to_cp{};
  // Every table character is below U+0144 (0xFF itself, or U+0100 + 67).
  std::array<int16_t, 0x144> to_byte{};

  ByteTable() {
    to_byte.fill(-1);
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      to_cp[b] = maps_to_itself(b) ? static_cast<char32_t>(b) : next++;
      to_byte[to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteTable& table() {
  static const ByteTable t;
  return t;
}

}  // namespace

char32_t byte_to_code_point(uint8_t byte) { return table().to_cp[byte]; }

int code_point_to_byte(char32_t cp) { return cp < 0x144 ? table().to_byte[cp] : -1; }

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) append_utf8(out, byte_to_code_point(static_cast<uint8_t>(c)));
  return out;
}

std::string byte_level_decode(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  size_t i = 0;
  while (i < token.size()) {
    char32_t cp = 0;
    int n = decode_utf8(token, i, cp);
    if (n < 0) {  // not UTF-8 at all: keep the bytes
      out.append(token.substr(i, static_cast<size_t>(-n)));
      i += static_cast<size_t>(-n);
      continue;
    }
    int b = code_point_to_byte(cp);
    if (b >= 0) {
      out.push_back(static_cast<char>(b));
    } else {
      out.append(token.substr(i, static_cast<size_t>(n)));
    }
    i += static_cast<size_t>(n);
  }
  return out;
}

int decode_utf8(std::string_view s, size_t i, char32_t& cp) {
  auto u = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  uint8_t lead = u(i);
  if (lead < 0x80) {
    cp = lead;
    return 1;
  }
  // Well-formed sequences (Unicode Table 3-7): the lead byte fixes the length
  // and the allowed range of the second byte; later bytes are 80..BF.
  int len = 0;
  uint8_t lo = 0x80, hi = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    len = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    len = 3;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    len = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    return -1;
  }
  char32_t value = lead & (0x7F >> len);
  for (int k = 1; k < len; ++k) {
    size_t pos = i + static_cast<size_t>(k);
    if (pos >= s.size()) return -k;
    uint8_t c = u(pos);
    uint8_t min = k == 1 ? lo : 0x80, max = k == 1 ? hi : 0xBF;
    if (c < min || c > max) return -k;
    value = (value << 6) | (c & 0x3F);
  }
  cp = value;
  return len;
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    char32_t cp = 0;
    int n = decode_utf8(bytes, i, cp);
    if (n > 0) {
      out.append(bytes.substr(i, static_cast<size_t>(n)));
      i += static_cast<size_t>(n);
    } else {
      out.append("\xEF\xBF\xBD");
      i += static_cast<size_t>(-n);
    }
  }
  return out;
}

size_t utf8_incomplete_tail(std::string_view s) {
  // A held-back tail starts at a lead byte at most 3 bytes from the end and
  // is a maximal subpart that runs exactly to the end of `s`.
  for (size_t k = 1; k <= 3 && k <= s.size(); ++k) {
    size_t start = s.size() - k;
    uint8_t b = static_cast<uint8_t>(s[start]);
    if (b < 0xC0) continue;  // ASCII or continuation byte: keep looking left
    char32_t cp = 0;
    int n = decode_utf8(s, start, cp);
    return (n < 0 && static_cast<size_t>(-n) == k && b >= 0xC2 && b <= 0xF4) ? k : 0;
  }
  return 0;
}

bool is_unicode_whitespace(char32_t cp) {
  switch (cp) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

#if defined(MODELBUILD_HAVE_ICU)

bool nfc_available() { return true; }

std::string nfc_normalize(std::string_view text) {
  // Lead bytes below 0xCC only start code points below U+0300, and no such
  // string can change under NFC (every composing mark is U+0300 or above), so
  // most text, and all ASCII, skips ICU.
  bool may_change = false;
  for (char c : text) may_change |= static_cast<uint8_t>(c) >= 0xCC;
  if (!may_change) return std::string(text);

  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status)) return std::string(text);
  std::string out;
  out.reserve(text.size());
  auto flush_valid = [&](size_t begin, size_t end) {
    if (begin == end) return;
    std::string_view run = text.substr(begin, end - begin);
    UErrorCode st = U_ZERO_ERROR;
    icu::StringByteSink<std::string> sink(&out);
    size_t before = out.size();
    nfc->normalizeUTF8(0, icu::StringPiece(run.data(), static_cast<int32_t>(run.size())), sink, nullptr, st);
    if (U_FAILURE(st)) {
      out.resize(before);
      out.append(run);
    }
  };
  size_t run_start = 0, i = 0;
  while (i < text.size()) {
    char32_t cp = 0;
    int n = decode_utf8(text, i, cp);
    if (n > 0) {
      i += static_cast<size_t>(n);
      continue;
    }
    flush_valid(run_start, i);
    out.append(text.substr(i, static_cast<size_t>(-n)));
    i += static_cast<size_t>(-n);
    run_start = i;
  }
  flush_valid(run_start, text.size());
  return out;
}

#else

bool nfc_available() { return false; }

std::string nfc_normalize(std::string_view text) { return std::string(text); }

#endif

}  // namespace mb::inference
