#pragma once
// TextStream: turns the growing decoded text of a generation into streamed
// pieces, and finds stop strings.
//
// Each update() gets the whole completion decoded so far. Only text that can
// no longer change is passed to on_text: a trailing incomplete UTF-8 sequence
// (or the U+FFFD a decoder put in its place) is held back, and so are the
// last (longest stop string - 1) bytes, which could still become the start of
// a stop string. When a stop string appears the text is cut before it and
// nothing of it is ever streamed. finish() flushes what was held back.
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace mb::inference {

class TextStream {
 public:
  TextStream(std::vector<std::string> stop_strings, std::function<void(std::string_view)> on_text);

  // Returns true when a stop string was found (text() is then final).
  bool update(std::string_view full_text);
  // Streams everything not yet streamed (call once generation is over).
  void finish();

  const std::string& text() const { return m_text; }

 private:
  void emit_up_to(size_t end);

  std::vector<std::string> m_stops;
  std::function<void(std::string_view)> m_on_text;
  size_t m_holdback = 0;
  std::string m_text;
  size_t m_emitted = 0;
  bool m_stopped = false;
};

// Length of the longest prefix of `s` that does not end inside a UTF-8
// sequence (a trailing lead byte without all its continuation bytes).
size_t complete_utf8_prefix(std::string_view s);

}  // namespace mb::inference
