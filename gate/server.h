#pragma once
// The OpenAI-compatible front of `modelbuild serve`: a /v1/chat/completions
// request body becomes a generation on the engine, and its output becomes
// an OpenAI-shaped reply, whole or as server-sent events. Kept free of
// sockets so that it is unit-tested directly; cli/serve_command.cc only wires
// it to cpp-httplib.
//
// Who owns what: ChatServer owns the engine and a WorkQueue whose one thread
// runs the generations in arrival order (the engine and its KV cache serve
// one generation at a time; the prefix cache is reused across requests, and
// reuse is exact, so a reply does not depend on what ran before it). Each
// request is a ChatCall, shared by the HTTP thread that reads it and the
// worker that fills it.
//
// Thread-safety: every public function may be called from any thread.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "gate/chat_reply.h"
#include "gate/chat_request.h"
#include "gate/prefix_constraint.h"
#include "gate/work_queue.h"
#include "inference/engine.h"

namespace mb::gate {

// An HTTP status and a JSON body, what every endpoint returns.
struct HttpReply {
  int status = 200;
  nlohmann::ordered_json body;
};

// {"error": {"message", "type", "param", "code"}}, the shape OpenAI clients expect.
HttpReply error_reply(int status, const std::string& message, const std::string& type = "invalid_request_error",
                      const nlohmann::ordered_json& param = nullptr, const nlohmann::ordered_json& code = nullptr);
// A 400 for a request parse_chat_request refused (param = the field;
// code "unsupported_parameter" for fields this server does not implement).
HttpReply request_error_reply(const Error& e);
// The 401 for a missing or wrong API key (code "invalid_api_key").
HttpReply unauthorized_reply();
// Whether an Authorization header value is "Bearer KEY". The comparison
// takes the same time wherever the first difference is.
bool bearer_matches(std::string_view authorization, std::string_view key);

class ChatServer;

// One chat completion in flight.
class ChatCall {
 public:
  ChatCall(ChatRequest request, CompletionInfo info);

  bool stream() const { return m_request.stream; }

  // Blocks until the generation has produced its first token or ended. An
  // error reply when it failed before that: 400 for a prompt the engine
  // refuses (too long for the context), 503 when the server is stopping.
  std::optional<HttpReply> wait_started();
  // Blocks until the generation ends; the whole chat.completion reply.
  HttpReply wait_reply();
  // Blocks until there is more of the stream; appends its server-sent
  // events to `out`. Returns false once the stream is over (the last events,
  // [DONE] or an error event, are then in `out`).
  bool next_events(std::string& out);
  // The client went away: the generation stops after its next token.
  void cancel() { m_cancelled = true; }
  bool cancelled() const { return m_cancelled; }

 private:
  friend class ChatServer;
  struct Outcome {
    std::string finish_reason;
    Usage usage;
  };
  // The worker's side.
  void push(const ReplyEvent& e);
  void mark_started();
  void close(Result<Outcome> end);

  const ChatRequest m_request;
  const CompletionInfo m_info;
  std::atomic<bool> m_cancelled{false};
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::deque<ReplyEvent> m_events;  // not yet read
  bool m_started = false;
  std::optional<Result<Outcome>> m_end;
  // The reader's side (one reader).
  bool m_stream_begun = false;
  std::unique_ptr<ReplyBuilder> m_builder;
};

class ChatServer {
 public:
  ChatServer(std::unique_ptr<inference::Engine> engine, std::string model_id, int default_max_tokens);
  ~ChatServer();  // cancels what is queued or running, then waits for the worker

  HttpReply health() const;
  HttpReply models() const;

  struct Started {
    std::optional<HttpReply> error;  // the request was refused; no call
    std::shared_ptr<ChatCall> call;
  };
  // Parses `body` and queues its generation.
  Started start(std::string_view body);
  // start() and wait_reply(): the whole reply, even for a request that asks
  // for a stream (for in-process callers and tests).
  HttpReply chat_completions(std::string_view body);
  // The server is stopping: queued calls end at once and the running one
  // after its next token, with 503; start() answers 503 from now on.
  void stop();

 private:
  void generate(ChatCall& call);

  std::unique_ptr<inference::Engine> m_engine;
  std::string m_model;
  int m_default_max_tokens;
  // Each token's text on its own, for tool_choice's constrained prefix.
  std::shared_ptr<const TokenTexts> m_token_texts;
  std::atomic<bool> m_stopping{false};
  WorkQueue m_queue;  // last member: destroyed (joined) first
};

}  // namespace mb::gate
