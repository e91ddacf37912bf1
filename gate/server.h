#pragma once
// The OpenAI-compatible front of `modelbuild serve`: turns a
// /v1/chat/completions request body into an engine call and the generation
// into an OpenAI-shaped reply. Kept free of sockets so that the mapping is
// unit-tested directly; cli/serve_command.cc only wires it to cpp-httplib.
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "inference/engine.h"

namespace mb::gate {

// An HTTP status and a JSON body, what every endpoint returns.
struct HttpReply {
  int status = 200;
  nlohmann::ordered_json body;
};

// {"error": {"message", "type"}}, the shape OpenAI clients expect.
HttpReply error_reply(int status, const std::string& message, const std::string& type = "invalid_request_error");

// A parsed and validated chat request.
struct ChatRequest {
  std::vector<inference::ChatMessage> messages;
  nlohmann::ordered_json tools;  // null when absent; key order preserved
  int max_tokens = 0;
  std::vector<std::string> stop;
};

// Parses a request body. Errors (malformed JSON, missing messages, wrong
// types, temperature > 0, stream: true) come back as a 400 reply.
bool parse_chat_request(const std::string& body, int default_max_tokens, ChatRequest* out, HttpReply* error);

// The OpenAI reply for a generation: Qwen <tool_call> blocks become
// `tool_calls` (content = the text outside them, or null).
nlohmann::ordered_json completion_body(const inference::Generation& g, const std::string& model);

// One model behind the endpoints. Generations are serialized (the Engine is
// not thread-safe); handlers may be called from any thread.
class ChatServer {
 public:
  ChatServer(std::unique_ptr<inference::Engine> engine, std::string model_id, int default_max_tokens)
      : m_engine(std::move(engine)), m_model(std::move(model_id)), m_default_max_tokens(default_max_tokens) {}

  HttpReply health() const;
  HttpReply models() const;
  HttpReply chat_completions(const std::string& body);

 private:
  std::unique_ptr<inference::Engine> m_engine;
  std::string m_model;
  int m_default_max_tokens;
  std::mutex m_mutex;
};

}  // namespace mb::gate
