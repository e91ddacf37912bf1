#pragma once
// Classification: did a response call a tool?
//
// A response counts as a tool call when it contains a tool-call object in
// one of the forms the suite allows:
//   - qwen:   <tool_call>{"name": …, "arguments": {…}}</tool_call> (Qwen2.5's
//             format; an unclosed tag at the end — the token limit cut it —
//             still counts if the JSON inside is complete);
//   - json:   a bare or ```json-fenced JSON object with "name" (a string) and
//             "arguments" (an object, or a string holding one);
//   - openai: a structured tool_calls field from an OpenAI-compatible server.
// Ambiguous responses are decided as follows and noted in the verdict:
//   - malformed JSON inside <tool_call> tags is NOT a call (the caller could
//     not have executed it);
//   - an object without "arguments", or text merely mentioning a tool, is not
//     a call;
//   - a call to a tool the suite does not define still counts as a call (the
//     model did decide to use a tool), but fails a case that names its tool.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gate/suite.h"

namespace mb::gate {

struct ToolCall {
  std::string name;
  nlohmann::ordered_json arguments;  // an object, in the model's key order
};

struct Classification {
  bool is_tool_call = false;
  std::vector<ToolCall> calls;
  std::string form;                // "qwen", "json", "openai", or "" for direct
  std::vector<std::string> notes;  // why an ambiguous response was decided as it was
};

// `structured` holds OpenAI tool_calls (may be empty or null).
Classification classify(const std::string& text, const nlohmann::json& structured, const ClassifyRule& rule,
                        const std::vector<std::string>& known_tools);

// Whether the classification satisfies the case; `why` says what went wrong.
bool case_passes(const Case& c, const Classification& k, std::string* why);

// Qwen2.5's <tool_call> blocks in a model's output, as a server turns them
// into OpenAI tool_calls: the valid calls in order, the text outside those
// blocks (trimmed; a malformed block stays in it, so nothing the model said
// is lost), and notes on blocks that were not calls.
struct QwenToolCalls {
  std::vector<ToolCall> calls;
  std::string content;
  std::vector<std::string> notes;
};
QwenToolCalls parse_qwen_tool_calls(const std::string& text);

}  // namespace mb::gate
