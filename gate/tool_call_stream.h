#pragma once
// ToolCallStream: turns a model's text, as it is generated, into the pieces
// of an OpenAI chat message: content, and tool calls (an index and name,
// then argument fragments). `modelbuild serve` uses it for both streamed and
// whole replies, so a reply is the same whichever way it is asked for.
//
// Qwen2.5 writes a call as
//   <tool_call>\n{"name": "NAME", "arguments": {...}}\n</tool_call>
// Text is content until "<tool_call>"; only a tail that could still become
// that tag is held back. Inside a block, once the header up to the first
// '{' of the arguments has been seen, the call starts (its name goes out) and
// the arguments stream as they come, with the whitespace outside strings
// dropped (`{"query":"q"}`, as OpenAI sends them); the call's arguments end
// when their braces balance, and the rest up to "</tool_call>" is dropped.
// A block that does not start with that header (other key order, string
// arguments, malformed) is held whole until "</tool_call>" or the end, then
// decided as parse_qwen_tool_calls decides it: a call (arguments sent in one
// piece) or, when it is not one, content with its tags, so nothing the model
// said is lost. Once a call has started it stays a call: arguments that turn
// out malformed are sent as written (OpenAI's own API does the same).
//
// Content is the text outside the calls with leading and trailing
// whitespace dropped (whitespace between two pieces of text is kept), as
// parse_qwen_tool_calls trims it.
//
// The format, with worked examples: docs/formats/openai-sse.md.
//
// Not thread-safe: one per generation.
#include <functional>
#include <string>
#include <string_view>

namespace mb::gate {

struct ReplyEvent {
  enum class Kind {
    kContent,        // `text` is the next piece of content
    kToolCall,       // call `index` starts; `text` is its function name
    kToolArguments,  // `text` is the next fragment of call `index`'s arguments
  };
  Kind kind = Kind::kContent;
  int index = 0;
  std::string text;
};

struct ToolCallStreamOptions {
  bool parse_calls = true;  // false (tool_choice "none"): everything is content
  int max_calls = -1;       // after this many calls, the rest is dropped; -1 = no limit
};

class ToolCallStream {
 public:
  ToolCallStream(ToolCallStreamOptions options, std::function<void(const ReplyEvent&)> sink);

  void feed(std::string_view text);
  // The text has ended: flushes what was held back.
  void finish();

  int calls() const { return m_calls; }
  // A call whose arguments had not closed when the text ended.
  bool call_open() const { return m_state == State::kArguments; }
  // max_calls reached: nothing more will come out, the generation can stop.
  bool done() const { return m_state == State::kDone; }

 private:
  enum class State { kText, kHeader, kArguments, kTail, kBlock, kDone };

  bool step();  // one state's worth of work on m_buf; false when it needs more text
  bool step_text();
  bool step_header();
  bool step_arguments();
  bool step_tail();
  bool step_block();
  void emit_content(std::string_view text);
  void start_call(std::string name);
  void end_call();
  void decide_block(std::string_view body, bool closed);

  ToolCallStreamOptions m_options;
  std::function<void(const ReplyEvent&)> m_sink;
  State m_state = State::kText;
  std::string m_buf;      // text received and not yet consumed by the current state
  std::string m_held_ws;  // trailing whitespace of the content, sent only if more content follows
  bool m_content_started = false;
  int m_calls = 0;
  // The arguments scanner (kArguments).
  int m_depth = 0;
  bool m_in_string = false;
  bool m_escape = false;
};

}  // namespace mb::gate
