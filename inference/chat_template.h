#pragma once
// ChatML prompts exactly as Qwen2.5's chat template renders them
// (docs/formats/chat-template.md §1-§3), without a Jinja engine: framing, the
// default system message, the "# Tools" system block, assistant tool calls
// as <tool_call> JSON, and tool results grouped into a user turn inside
// <tool_response> tags.
//
// JSON inside the prompt (tool signatures, call arguments) is written like
// Python's json.dumps(ensure_ascii=False) with default separators, which is
// what transformers' `tojson` filter produces; key order is the caller's, so
// pass nlohmann::ordered_json (a plain nlohmann::json converts implicitly but
// has already sorted its keys, which changes the prompt).
//
// Pure functions; thread-safe.
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"
#include "inference/engine.h"

namespace mb::inference {

// The default system message of the Qwen2.5 *Instruct* templates. The base
// models' template says just "You are a helpful assistant."; other families
// have none (pass "").
inline constexpr std::string_view kQwen25DefaultSystem =
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

// Renders OpenAI-style messages: an array of objects with
//   "role": "system" | "user" | "assistant" | "tool",
//   "content": a string, null, or an array of {"type": "text", "text": ...}
//              parts (concatenated),
//   "tool_calls" (assistant only): [{"function": {"name": ..., "arguments":
//              object or JSON string}}, ...] or the same without the
//              "function" wrapper.
// String arguments (the OpenAI wire form) are parsed and rendered as the
// JSON object they contain; a string that is not JSON is rendered as a JSON
// string, as the template would. `tools` is null or an array of tool objects
// (rendered whole, one per line). When the first message is not a system
// message, `default_system` is used in its place; an empty `default_system`
// means no system turn at all unless there are tools (whose block then
// starts with "# Tools"). `add_generation_prompt` appends
// "<|im_start|>assistant\n".
// Errors (kInvalidInput) name the offending message: unknown roles (the
// Jinja template would silently drop them), non-string content, tool calls
// without a function name.
Result<std::string> render_chatml_json(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                                       bool add_generation_prompt,
                                       std::string_view default_system = kQwen25DefaultSystem);

// Same for the engine's messages (role, content and assistant tool calls).
Result<std::string> render_chatml(std::span<const ChatMessage> messages, const nlohmann::ordered_json& tools,
                                  bool add_generation_prompt, std::string_view default_system = kQwen25DefaultSystem);

// `value` serialized as Python's json.dumps(value, ensure_ascii=False):
// separators ", " and ": ", keys in stored order, non-ASCII UTF-8 as is,
// control characters as \n \r \t \b \f or \u00XX, floats as Python's repr
// (1.0, 1e-05, 1e+16, NaN, Infinity). Recursive: render_chatml_json refuses
// input nested deeper than 256 levels before calling it.
std::string python_json_dumps(const nlohmann::ordered_json& value);

}  // namespace mb::inference
