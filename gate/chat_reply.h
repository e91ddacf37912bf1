#pragma once
// The two shapes of a chat completion reply, built from ToolCallStream's
// events: the whole `chat.completion` object, and the server-sent events of
// a streamed one (docs/formats/openai-sse.md has the wire format with a
// worked example).
//
// Stream: a first chunk with delta {role: "assistant", content: ""}; one
// chunk per event (delta.content, or delta.tool_calls [{index, id, type,
// function: {name, arguments: ""}}] when a call starts and [{index, function:
// {arguments: FRAGMENT}}] after); a chunk with an empty delta and the
// finish_reason; with include_usage, every chunk carries "usage": null and a
// last chunk has "choices": [] and the usage; then `data: [DONE]`.
//
// Plain values; ChunkEncoder and ReplyBuilder are not thread-safe.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "gate/tool_call_stream.h"
#include "inference/engine.h"

namespace mb::gate {

struct CompletionInfo {
  std::string id;  // "chatcmpl-…", unique within the server's life and across restarts
  int64_t created = 0;
  std::string model;
  // "call_…", unique for every call of every completion.
  std::string call_id(int index) const;
};

// A fresh id and the current time.
CompletionInfo new_completion(const std::string& model);

struct Usage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
};

// OpenAI's finish_reason: "tool_calls" when the reply has calls (unless the
// token limit cut the last one short: "length"), else "length" when the
// token limit ended it, else "stop".
std::string finish_reason(const std::string& stop_reason, int calls, bool call_open);

class ReplyBuilder {
 public:
  explicit ReplyBuilder(CompletionInfo info) : m_info(std::move(info)) {}
  void add(const ReplyEvent& e);
  // {id, object: "chat.completion", created, model, choices: [{index: 0,
  // message: {role, content (null when empty), refusal: null, tool_calls?},
  // logprobs: null, finish_reason}], usage}.
  nlohmann::ordered_json body(const std::string& finish_reason, const Usage& usage) const;

 private:
  CompletionInfo m_info;
  std::string m_content;
  nlohmann::ordered_json m_calls = nlohmann::ordered_json::array();
};

class ChunkEncoder {
 public:
  ChunkEncoder(CompletionInfo info, bool include_usage) : m_info(std::move(info)), m_include_usage(include_usage) {}
  std::string begin() const;
  std::string event(const ReplyEvent& e) const;
  std::string end(const std::string& finish_reason, const Usage& usage) const;

 private:
  std::string chunk(nlohmann::ordered_json delta, const nlohmann::ordered_json& finish_reason) const;

  CompletionInfo m_info;
  bool m_include_usage;
};

// One server-sent event: "data: " + JSON + "\n\n".
std::string sse_event(const nlohmann::ordered_json& data);
// {"error": {"message", "type", "param": null, "code": null}} as an event,
// for an error after the stream has started (OpenAI clients raise it).
std::string sse_error(const std::string& message, const std::string& type);

// The whole reply for a finished generation: g.text through ToolCallStream.
nlohmann::ordered_json completion_body(const inference::Generation& g, const std::string& model,
                                       ToolCallStreamOptions options = {});

}  // namespace mb::gate
