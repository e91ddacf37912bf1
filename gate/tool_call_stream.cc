#include "gate/tool_call_stream.h"

#include <nlohmann/json.hpp>

#include "gate/classify.h"

namespace mb::gate {
namespace {

constexpr std::string_view kOpen = "<tool_call>";
constexpr std::string_view kClose = "</tool_call>";
constexpr std::string_view kSpace = " \t\r\n";
// A header longer than this is not the one Qwen writes.
constexpr size_t kMaxHeader = 4096;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Length of the longest tail of `s` that is a proper prefix of `tag`: the
// part that must wait for more text before anyone can say what it is.
size_t partial_tag(std::string_view s, std::string_view tag) {
  for (size_t n = std::min(s.size(), tag.size() - 1); n > 0; --n)
    if (s.substr(s.size() - n) == tag.substr(0, n)) return n;
  return 0;
}

enum class Match { kYes, kNo, kMore };

// `{"name": "NAME", "arguments": ` followed by '{', with any whitespace
// between the tokens. On kYes, `end` is the offset of that '{'.
class HeaderMatcher {
 public:
  explicit HeaderMatcher(std::string_view s) : m_s(s) {}

  Match match(std::string* name, size_t* end) {
    for (std::string_view lit : {"{", "\"name\"", ":"})
      if (Match m = literal(lit); m != Match::kYes) return m;
    if (Match m = string(name); m != Match::kYes) return m;
    for (std::string_view lit : {",", "\"arguments\"", ":"})
      if (Match m = literal(lit); m != Match::kYes) return m;
    skip_space();
    if (m_i >= m_s.size()) return Match::kMore;
    *end = m_i;
    return m_s[m_i] == '{' ? Match::kYes : Match::kNo;
  }

 private:
  void skip_space() {
    while (m_i < m_s.size() && is_space(m_s[m_i])) ++m_i;
  }
  Match literal(std::string_view lit) {
    skip_space();
    for (char c : lit) {
      if (m_i >= m_s.size()) return Match::kMore;
      if (m_s[m_i++] != c) return Match::kNo;
    }
    return Match::kYes;
  }
  Match string(std::string* out) {
    skip_space();
    if (m_i >= m_s.size()) return Match::kMore;
    if (m_s[m_i] != '"') return Match::kNo;
    size_t j = m_i + 1;
    while (j < m_s.size() && m_s[j] != '"') j += m_s[j] == '\\' ? 2 : 1;
    if (j >= m_s.size()) return Match::kMore;
    auto v = nlohmann::json::parse(m_s.substr(m_i, j + 1 - m_i), nullptr, /*allow_exceptions=*/false);
    if (!v.is_string()) return Match::kNo;
    *out = v.get<std::string>();
    m_i = j + 1;
    return Match::kYes;
  }

  std::string_view m_s;
  size_t m_i = 0;
};

}  // namespace

ToolCallStream::ToolCallStream(ToolCallStreamOptions options, std::function<void(const ReplyEvent&)> sink)
    : m_options(options), m_sink(std::move(sink)) {
  if (m_options.max_calls == 0) m_options.parse_calls = false;
}

void ToolCallStream::feed(std::string_view text) {
  if (m_state == State::kDone) return;
  m_buf.append(text);
  while (step()) {
  }
}

bool ToolCallStream::step() {
  switch (m_state) {
    case State::kText:
      return step_text();
    case State::kHeader:
      return step_header();
    case State::kArguments:
      return step_arguments();
    case State::kTail:
      return step_tail();
    case State::kBlock:
      return step_block();
    case State::kDone:
      m_buf.clear();
      return false;
  }
  return false;
}

bool ToolCallStream::step_text() {
  if (!m_options.parse_calls) {
    emit_content(m_buf);
    m_buf.clear();
    return false;
  }
  const size_t open = m_buf.find(kOpen);
  if (open != std::string::npos) {
    emit_content(std::string_view(m_buf).substr(0, open));
    m_buf.erase(0, open + kOpen.size());
    m_state = State::kHeader;
    return true;
  }
  const size_t keep = partial_tag(m_buf, kOpen);
  emit_content(std::string_view(m_buf).substr(0, m_buf.size() - keep));
  m_buf.erase(0, m_buf.size() - keep);
  return false;
}

bool ToolCallStream::step_header() {
  const size_t close = m_buf.find(kClose);
  std::string name;
  size_t end = 0;
  Match m = HeaderMatcher(std::string_view(m_buf).substr(0, close)).match(&name, &end);
  if (m == Match::kMore && (close != std::string::npos || m_buf.size() > kMaxHeader)) m = Match::kNo;
  if (m == Match::kMore) return false;
  if (m == Match::kNo) {
    m_state = State::kBlock;  // m_buf still holds the whole body
    return true;
  }
  m_buf.erase(0, end);
  start_call(std::move(name));
  return true;
}

bool ToolCallStream::step_arguments() {
  const size_t close = m_buf.find(kClose);
  const size_t limit = close != std::string::npos ? close : m_buf.size() - partial_tag(m_buf, kClose);
  std::string out;
  size_t i = 0;
  bool balanced = false;
  for (; i < limit && !balanced; ++i) {
    const char c = m_buf[i];
    if (m_in_string) {
      out.push_back(c);
      if (m_escape)
        m_escape = false;
      else if (c == '\\')
        m_escape = true;
      else if (c == '"')
        m_in_string = false;
      continue;
    }
    if (is_space(c)) continue;
    out.push_back(c);
    if (c == '"') m_in_string = true;
    if (c == '{' || c == '[') ++m_depth;
    if ((c == '}' || c == ']') && --m_depth == 0) balanced = true;
  }
  if (!out.empty()) m_sink({ReplyEvent::Kind::kToolArguments, m_calls - 1, std::move(out)});
  m_buf.erase(0, i);
  if (balanced) {
    end_call();
    return true;
  }
  if (close == std::string::npos) return false;
  // The block closed before the arguments did: the call ends as written.
  m_buf.erase(0, close - i + kClose.size());
  end_call();
  if (m_state == State::kTail) m_state = State::kText;
  return true;
}

bool ToolCallStream::step_tail() {
  const size_t close = m_buf.find(kClose);
  if (close == std::string::npos) {
    m_buf.erase(0, m_buf.size() - partial_tag(m_buf, kClose));
    return false;
  }
  m_buf.erase(0, close + kClose.size());
  m_state = State::kText;
  return true;
}

bool ToolCallStream::step_block() {
  const size_t close = m_buf.find(kClose);
  if (close == std::string::npos) return false;
  const std::string body = m_buf.substr(0, close);
  m_buf.erase(0, close + kClose.size());
  m_state = State::kText;
  decide_block(body, true);
  return true;
}

void ToolCallStream::decide_block(std::string_view body, bool closed) {
  std::string block = std::string(kOpen) + std::string(body) + (closed ? std::string(kClose) : "");
  QwenToolCalls q = parse_qwen_tool_calls(block);
  if (q.calls.size() != 1) {
    emit_content(block);
    return;
  }
  start_call(q.calls[0].name);
  m_sink({ReplyEvent::Kind::kToolArguments, m_calls - 1, q.calls[0].arguments.dump()});
  end_call();
  if (m_state == State::kTail) m_state = State::kText;  // the block is over already
}

void ToolCallStream::start_call(std::string name) {
  m_sink({ReplyEvent::Kind::kToolCall, m_calls, std::move(name)});
  ++m_calls;
  m_state = State::kArguments;
  m_depth = 0;
  m_in_string = m_escape = false;
}

void ToolCallStream::end_call() {
  const bool last = m_options.max_calls > 0 && m_calls >= m_options.max_calls;
  m_state = last ? State::kDone : State::kTail;
  if (last) m_buf.clear();
}

void ToolCallStream::emit_content(std::string_view text) {
  if (!m_content_started) {
    const size_t first = text.find_first_not_of(kSpace);
    if (first == std::string_view::npos) return;
    text.remove_prefix(first);
    m_content_started = true;
  }
  const size_t last = text.find_last_not_of(kSpace);
  if (last == std::string_view::npos) {
    m_held_ws.append(text);
    return;
  }
  std::string piece = std::move(m_held_ws);
  piece.append(text.substr(0, last + 1));
  m_held_ws.assign(text.substr(last + 1));
  m_sink({ReplyEvent::Kind::kContent, 0, std::move(piece)});
}

void ToolCallStream::finish() {
  switch (m_state) {
    case State::kText:
      emit_content(m_buf);
      break;
    case State::kHeader:
    case State::kBlock:
      m_state = State::kText;
      decide_block(m_buf, false);
      break;
    case State::kArguments:  // cut off: the call stays open (call_open())
    case State::kTail:
    case State::kDone:
      break;
  }
  m_buf.clear();
}

}  // namespace mb::gate
