#pragma once
// ChatRequest: a /v1/chat/completions request body, parsed and validated
// against what `modelbuild serve` can honour. docs/gates.md ("modelbuild
// serve") lists every field: the ones honoured, the ones accepted and
// ignored (identifiers such as `user`), and the ones refused.
//
// parse_chat_request takes the body bytes and nothing else (no engine, no
// socket), so a fuzzer can drive it directly. It never throws; every error
// is a 400 for the client: Errc::kInvalidInput for a malformed body or an
// unknown field, Errc::kUnsupported for a valid OpenAI field or value this
// server does not implement (n > 1, logprobs, json response formats, ...).
// Error::where names the field ("n", "messages[2].content").
//
// Unknown top-level fields are refused, as OpenAI's API refuses them: a
// client that sends `top_k` or `repetition_penalty` (llama-server and vLLM
// extensions) would otherwise get an answer computed without them and
// never know. Unknown keys inside messages are ignored, because clients
// send back the assistant messages they received, with fields of their own.
//
// Pure functions; thread-safe.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "inference/engine.h"

namespace mb::gate {

enum class ToolChoice {
  kAuto,      // the model decides (tools offered, calls parsed)
  kNone,      // tools not offered in the prompt, no call parsed
  kRequired,  // the reply starts with a call to one of the tools
  kFunction,  // the reply starts with a call to `forced_tool`
};

struct ChatRequest {
  std::vector<inference::ChatMessage> messages;
  nlohmann::ordered_json tools;         // null when absent or empty; the client's key order
  std::vector<std::string> tool_names;  // tools[i].function.name, in order
  ToolChoice tool_choice = ToolChoice::kAuto;
  std::string forced_tool;  // the name, for kFunction
  bool parallel_tool_calls = true;
  int max_tokens = 0;  // max_completion_tokens, else max_tokens, else the server's default
  std::vector<std::string> stop;
  inference::SamplingOptions sampling;  // temperature 0 (greedy) unless the request says otherwise
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

// JSON nested deeper than this is refused (tool schemas are copied and
// rendered recursively; see chat_template.h).
inline constexpr size_t kMaxRequestDepth = 64;

// REQUIRES: default_max_tokens >= 1.
Result<ChatRequest> parse_chat_request(std::string_view body, int default_max_tokens);

// OpenAI's rule for function names: 1 to 64 of [a-zA-Z0-9_-].
bool valid_function_name(std::string_view name);

}  // namespace mb::gate
