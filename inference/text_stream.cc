#include "inference/text_stream.h"

#include <algorithm>

namespace mb::inference {

namespace {
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
}

size_t complete_utf8_prefix(std::string_view s) {
  // Walk back over at most 3 continuation bytes to the last lead byte.
  size_t i = s.size();
  int cont = 0;
  while (i > 0 && cont < 4 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) {
    --i;
    ++cont;
  }
  if (i == 0) return s.size();
  const unsigned char lead = static_cast<unsigned char>(s[i - 1]);
  int need = 0;
  if (lead >= 0xF0 && lead < 0xF8)
    need = 3;
  else if (lead >= 0xE0)
    need = 2;
  else if (lead >= 0xC0)
    need = 1;
  if (lead >= 0xF8) need = 0;
  return cont < need ? i - 1 : s.size();
}

TextStream::TextStream(std::vector<std::string> stop_strings, std::function<void(std::string_view)> on_text)
    : m_on_text(std::move(on_text)) {
  for (auto& s : stop_strings)
    if (!s.empty()) m_stops.push_back(std::move(s));
  for (const auto& s : m_stops) m_holdback = std::max(m_holdback, s.size() - 1);
}

void TextStream::emit_up_to(size_t end) {
  if (end <= m_emitted) return;
  if (m_on_text) m_on_text(std::string_view(m_text).substr(m_emitted, end - m_emitted));
  m_emitted = end;
}

bool TextStream::update(std::string_view full_text) {
  if (m_stopped) return true;
  m_text.assign(full_text);
  // Earliest stop string; a match can only start where the previous text
  // could not yet have shown all of it.
  size_t cut = std::string::npos;
  const size_t from = m_emitted;
  for (const auto& s : m_stops) {
    const size_t p = m_text.find(s, from);
    if (p != std::string::npos) cut = std::min(cut, p);
  }
  if (cut != std::string::npos) {
    m_text.resize(cut);
    m_stopped = true;
    emit_up_to(complete_utf8_prefix(m_text));
    return true;
  }
  size_t safe = m_text.size() > m_holdback ? m_text.size() - m_holdback : 0;
  std::string_view head = std::string_view(m_text).substr(0, safe);
  if (head.ends_with(kReplacement)) head.remove_suffix(kReplacement.size());
  emit_up_to(complete_utf8_prefix(head));
  return false;
}

void TextStream::finish() { emit_up_to(m_text.size()); }

}  // namespace mb::inference
