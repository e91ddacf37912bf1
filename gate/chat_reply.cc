#include "gate/chat_reply.h"

#include <fmt/format.h>

#include <atomic>
#include <chrono>

namespace mb::gate {
namespace {

using ojson = nlohmann::ordered_json;

ojson usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

}  // namespace

std::string CompletionInfo::call_id(int index) const {
  return fmt::format("call_{}_{}", id.substr(id.find('-') + 1), index);
}

CompletionInfo new_completion(const std::string& model) {
  static std::atomic<uint64_t> counter{0};
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  CompletionInfo info;
  info.created = std::chrono::duration_cast<std::chrono::seconds>(now).count();
  // Microseconds keep ids from two runs of the server apart; the counter
  // keeps two completions of one run apart.
  const int64_t micros = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
  info.id = fmt::format("chatcmpl-{:x}{:04x}", micros, counter++ & 0xffff);
  info.model = model;
  return info;
}

std::string finish_reason(const std::string& stop_reason, int calls, bool call_open) {
  if (calls > 0 && !(call_open && stop_reason == "max_tokens")) return "tool_calls";
  return stop_reason == "max_tokens" ? "length" : "stop";
}

void ReplyBuilder::add(const ReplyEvent& e) {
  switch (e.kind) {
    case ReplyEvent::Kind::kContent:
      m_content += e.text;
      break;
    case ReplyEvent::Kind::kToolCall:
      m_calls.push_back(
          {{"id", m_info.call_id(e.index)}, {"type", "function"}, {"function", {{"name", e.text}, {"arguments", ""}}}});
      break;
    case ReplyEvent::Kind::kToolArguments: {
      auto& args = m_calls[static_cast<size_t>(e.index)]["function"]["arguments"];
      args = args.get<std::string>() + e.text;
      break;
    }
  }
}

ojson ReplyBuilder::body(const std::string& finish, const Usage& usage) const {
  ojson message = {
      {"role", "assistant"}, {"content", m_content.empty() ? ojson(nullptr) : ojson(m_content)}, {"refusal", nullptr}};
  if (!m_calls.empty()) message["tool_calls"] = m_calls;
  return {{"id", m_info.id},
          {"object", "chat.completion"},
          {"created", m_info.created},
          {"model", m_info.model},
          {"choices",
           ojson::array({{{"index", 0}, {"message", message}, {"logprobs", nullptr}, {"finish_reason", finish}}})},
          {"usage", usage_json(usage)}};
}

std::string sse_event(const ojson& data) { return "data: " + data.dump() + "\n\n"; }

std::string sse_error(const std::string& message, const std::string& type) {
  return sse_event({{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}}}});
}

std::string ChunkEncoder::chunk(ojson delta, const ojson& finish) const {
  ojson c = {
      {"id", m_info.id},
      {"object", "chat.completion.chunk"},
      {"created", m_info.created},
      {"model", m_info.model},
      {"choices",
       ojson::array({{{"index", 0}, {"delta", std::move(delta)}, {"logprobs", nullptr}, {"finish_reason", finish}}})}};
  if (m_include_usage) c["usage"] = nullptr;
  return sse_event(c);
}

std::string ChunkEncoder::begin() const { return chunk({{"role", "assistant"}, {"content", ""}}, nullptr); }

std::string ChunkEncoder::event(const ReplyEvent& e) const {
  switch (e.kind) {
    case ReplyEvent::Kind::kContent:
      return chunk({{"content", e.text}}, nullptr);
    case ReplyEvent::Kind::kToolCall:
      return chunk({{"tool_calls", ojson::array({{{"index", e.index},
                                                  {"id", m_info.call_id(e.index)},
                                                  {"type", "function"},
                                                  {"function", {{"name", e.text}, {"arguments", ""}}}}})}},
                   nullptr);
    case ReplyEvent::Kind::kToolArguments:
      return chunk({{"tool_calls", ojson::array({{{"index", e.index}, {"function", {{"arguments", e.text}}}}})}},
                   nullptr);
  }
  return "";
}

std::string ChunkEncoder::end(const std::string& finish, const Usage& usage) const {
  std::string out = chunk(ojson::object(), finish);
  if (m_include_usage) {
    out += sse_event({{"id", m_info.id},
                      {"object", "chat.completion.chunk"},
                      {"created", m_info.created},
                      {"model", m_info.model},
                      {"choices", ojson::array()},
                      {"usage", usage_json(usage)}});
  }
  return out + "data: [DONE]\n\n";
}

ojson completion_body(const inference::Generation& g, const std::string& model, ToolCallStreamOptions options) {
  ReplyBuilder reply(new_completion(model));
  ToolCallStream stream(options, [&](const ReplyEvent& e) { reply.add(e); });
  stream.feed(g.text);
  stream.finish();
  return reply.body(finish_reason(g.stop_reason, stream.calls(), stream.call_open()),
                    {g.prompt_tokens, g.completion_tokens});
}

}  // namespace mb::gate
