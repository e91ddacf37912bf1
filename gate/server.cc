#include "gate/server.h"

#include <fmt/format.h>

#include "base/parallel.h"
#include "gate/prefix_constraint.h"

namespace mb::gate {
namespace {

using ojson = nlohmann::ordered_json;

// How an engine error reaches the client. The engine's only errors on a
// valid request are about the prompt itself (too long for the context, a
// template it cannot render): the client's.
HttpReply engine_error_reply(const Error& e) {
  if (e.code == Errc::kCancelled) return error_reply(503, "the server is stopping", "server_error");
  if (e.code == Errc::kInvalidInput) return error_reply(400, e.to_string());
  return error_reply(500, e.to_string(), "server_error");
}

std::vector<std::string> forced_prefixes(const ChatRequest& r) {
  std::vector<std::string> out;
  if (r.tool_choice == ToolChoice::kFunction) out.push_back(tool_call_prefix(r.forced_tool));
  if (r.tool_choice == ToolChoice::kRequired)
    for (const std::string& name : r.tool_names) out.push_back(tool_call_prefix(name));
  return out;
}

}  // namespace

HttpReply error_reply(int status, const std::string& message, const std::string& type, const ojson& param,
                      const ojson& code) {
  return {status, ojson{{"error", {{"message", message}, {"type", type}, {"param", param}, {"code", code}}}}};
}

HttpReply request_error_reply(const Error& e) {
  return error_reply(400, e.message, "invalid_request_error", e.where.empty() ? ojson(nullptr) : ojson(e.where),
                     e.code == Errc::kUnsupported ? ojson("unsupported_parameter") : ojson(nullptr));
}

HttpReply unauthorized_reply() {
  return error_reply(401, "missing or wrong API key: send the header 'Authorization: Bearer KEY'",
                     "invalid_request_error", nullptr, "invalid_api_key");
}

bool bearer_matches(std::string_view authorization, std::string_view key) {
  constexpr std::string_view kScheme = "Bearer ";
  if (key.empty() || !authorization.starts_with(kScheme)) return false;
  std::string_view given = authorization.substr(kScheme.size());
  // Every byte of the key is compared whatever the given value is, so the
  // time taken tells nothing about how much of it was right.
  unsigned diff = given.size() == key.size() ? 0 : 1;
  for (size_t i = 0; i < key.size(); ++i)
    diff |= static_cast<unsigned char>(key[i]) ^ static_cast<unsigned char>(i < given.size() ? given[i] : 0);
  return diff == 0;
}

// ---- ChatCall ---------------------------------------------------------------

ChatCall::ChatCall(ChatRequest request, CompletionInfo info)
    : m_request(std::move(request)), m_info(std::move(info)), m_builder(std::make_unique<ReplyBuilder>(m_info)) {}

void ChatCall::push(const ReplyEvent& e) {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_events.push_back(e);
    m_started = true;
  }
  m_cv.notify_all();
}

void ChatCall::mark_started() {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    if (m_started) return;
    m_started = true;
  }
  m_cv.notify_all();
}

void ChatCall::close(Result<Outcome> end) {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_end = std::move(end);
  }
  m_cv.notify_all();
}

std::optional<HttpReply> ChatCall::wait_started() {
  std::unique_lock<std::mutex> lock(m_mutex);
  m_cv.wait(lock, [&] { return m_started || m_end.has_value(); });
  if (!m_started && !m_end->ok()) return engine_error_reply(m_end->error());
  return std::nullopt;
}

HttpReply ChatCall::wait_reply() {
  std::unique_lock<std::mutex> lock(m_mutex);
  m_cv.wait(lock, [&] { return m_end.has_value(); });
  if (!m_end->ok()) return engine_error_reply(m_end->error());
  for (const ReplyEvent& e : m_events) m_builder->add(e);
  m_events.clear();
  return {200, m_builder->body((*m_end)->finish_reason, (*m_end)->usage)};
}

bool ChatCall::next_events(std::string& out) {
  const ChunkEncoder encoder(m_info, m_request.include_usage);
  std::unique_lock<std::mutex> lock(m_mutex);
  m_cv.wait(lock, [&] { return !m_events.empty() || m_end.has_value(); });
  if (!m_stream_begun) {
    out += encoder.begin();
    m_stream_begun = true;
  }
  for (const ReplyEvent& e : m_events) out += encoder.event(e);
  m_events.clear();
  if (!m_end) return true;
  if (m_end->ok())
    out += encoder.end((*m_end)->finish_reason, (*m_end)->usage);
  else
    out += sse_error(m_end->error().to_string(),
                     m_end->error().code == Errc::kInvalidInput ? "invalid_request_error" : "server_error");
  return false;
}

// ---- ChatServer -------------------------------------------------------------

ChatServer::ChatServer(std::unique_ptr<inference::Engine> engine, std::string model_id, int default_max_tokens)
    : m_engine(std::move(engine)), m_model(std::move(model_id)), m_default_max_tokens(default_max_tokens) {
  std::vector<std::string> texts;
  const int vocab = m_engine->summary().vocab;
  texts.reserve(static_cast<size_t>(vocab));
  for (int32_t id = 0; id < vocab; ++id) texts.push_back(m_engine->detokenize(std::span(&id, 1)));
  m_token_texts = std::make_shared<const TokenTexts>(std::move(texts));
}

ChatServer::~ChatServer() { stop(); }

void ChatServer::stop() { m_stopping = true; }

HttpReply ChatServer::health() const { return {200, ojson{{"status", "ok"}}}; }

HttpReply ChatServer::models() const {
  return {200,
          ojson{{"object", "list"},
                {"data",
                 ojson::array({{{"id", m_model}, {"object", "model"}, {"created", 0}, {"owned_by", "modelbuild"}}})}}};
}

ChatServer::Started ChatServer::start(std::string_view body) {
  if (m_stopping) return {error_reply(503, "the server is stopping", "server_error"), nullptr};
  auto request = parse_chat_request(body, m_default_max_tokens);
  if (!request.ok()) return {request_error_reply(request.error()), nullptr};
  auto call = std::make_shared<ChatCall>(std::move(*request), new_completion(m_model));
  m_queue.post([this, call] {
    Status s = catch_all("serve", [&] {
      generate(*call);
      return Status();
    });
    if (!s.ok()) call->close(s.error());
  });
  return {std::nullopt, call};
}

HttpReply ChatServer::chat_completions(std::string_view body) {
  Started s = start(body);
  if (s.error) return *s.error;
  return s.call->wait_reply();
}

void ChatServer::generate(ChatCall& call) {
  const ChatRequest& r = call.m_request;
  if (m_stopping || call.cancelled()) {
    call.close(Error{Errc::kCancelled, "", "cancelled before it started"});
    return;
  }
  ToolCallStreamOptions parse;
  parse.parse_calls = r.tool_choice != ToolChoice::kNone;
  parse.max_calls = r.parallel_tool_calls ? -1 : 1;
  ToolCallStream stream(parse, [&](const ReplyEvent& e) { call.push(e); });

  inference::GenerateOptions go;
  go.max_tokens = r.max_tokens;
  go.stop_strings = r.stop;
  go.sampling = r.sampling;
  go.on_text = [&](std::string_view text) { stream.feed(text); };
  go.on_token = [&](int32_t) {
    call.mark_started();
    return !m_stopping && !call.cancelled() && !stream.done();
  };
  std::optional<PrefixConstraint> constraint;
  if (auto prefixes = forced_prefixes(r); !prefixes.empty()) {
    constraint.emplace(m_token_texts, std::move(prefixes));
    go.logits_filter = [&](std::span<const int32_t> generated, std::span<float> logits) {
      constraint->apply(generated, logits);
    };
  }
  // tool_choice "none": the model is not told about the tools at all.
  const ojson& tools = r.tool_choice == ToolChoice::kNone ? ojson() : r.tools;
  auto g = m_engine->generate(r.messages, tools, go);
  if (!g.ok()) {
    call.close(g.error());
    return;
  }
  stream.finish();
  if (g->stop_reason == "cancelled" && !stream.done()) {
    call.close(Error{Errc::kCancelled, "", "cancelled"});
    return;
  }
  call.close(ChatCall::Outcome{finish_reason(g->stop_reason, stream.calls(), stream.call_open()),
                               {g->prompt_tokens, g->completion_tokens}});
}

}  // namespace mb::gate
