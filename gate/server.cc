#include "gate/server.h"

#include <fmt/format.h>

#include <atomic>
#include <chrono>

#include "gate/classify.h"

namespace mb::gate {
namespace {

using ojson = nlohmann::ordered_json;

bool fail(HttpReply* error, const std::string& message) {
  *error = error_reply(400, message);
  return false;
}

// One message; `where` is "messages[i]" for the error text.
bool parse_message(const ojson& m, const std::string& where, inference::ChatMessage* out, HttpReply* error) {
  if (!m.is_object()) return fail(error, where + " must be an object");
  if (!m.contains("role") || !m["role"].is_string()) return fail(error, where + ".role must be a string");
  out->role = m["role"].get<std::string>();
  if (out->role != "system" && out->role != "user" && out->role != "assistant" && out->role != "tool")
    return fail(error, fmt::format("{}.role '{}' is not one of system, user, assistant, tool", where, out->role));
  if (m.contains("content") && !m["content"].is_null()) {
    if (m["content"].is_string()) {
      out->content = m["content"].get<std::string>();
    } else if (m["content"].is_array()) {
      // The parts form: [{"type": "text", "text": ...}, ...]; only text parts.
      for (const auto& part : m["content"]) {
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
            !part["text"].is_string())
          return fail(error, where + ".content parts must be {\"type\": \"text\", \"text\": string}");
        out->content += part["text"].get<std::string>();
      }
    } else {
      return fail(error, where + ".content must be a string, a list of text parts or null");
    }
  }
  if (m.contains("tool_calls") && !m["tool_calls"].is_null()) {
    if (out->role != "assistant") return fail(error, where + ".tool_calls is only allowed on assistant messages");
    if (!m["tool_calls"].is_array()) return fail(error, where + ".tool_calls must be a list");
    for (size_t i = 0; i < m["tool_calls"].size(); ++i) {
      const auto& c = m["tool_calls"][i];
      const std::string cw = fmt::format("{}.tool_calls[{}]", where, i);
      if (!c.is_object() || !c.contains("function") || !c["function"].is_object() || !c["function"].contains("name") ||
          !c["function"]["name"].is_string())
        return fail(error, cw + " must be {\"function\": {\"name\": string, \"arguments\": ...}}");
    }
    out->tool_calls = m["tool_calls"];
  }
  return true;
}

}  // namespace

HttpReply error_reply(int status, const std::string& message, const std::string& type) {
  return {status, ojson{{"error", {{"message", message}, {"type", type}}}}};
}

bool parse_chat_request(const std::string& body, int default_max_tokens, ChatRequest* out, HttpReply* error) {
  ojson j = ojson::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return fail(error, "the request body is not valid JSON");
  if (!j.is_object()) return fail(error, "the request body must be a JSON object");
  if (!j.contains("messages")) return fail(error, "'messages' is required");
  if (!j["messages"].is_array() || j["messages"].empty()) return fail(error, "'messages' must be a non-empty list");
  out->messages.clear();
  for (size_t i = 0; i < j["messages"].size(); ++i) {
    inference::ChatMessage m;
    if (!parse_message(j["messages"][i], fmt::format("messages[{}]", i), &m, error)) return false;
    out->messages.push_back(std::move(m));
  }
  out->tools = nullptr;
  if (j.contains("tools") && !j["tools"].is_null()) {
    if (!j["tools"].is_array()) return fail(error, "'tools' must be a list");
    for (size_t i = 0; i < j["tools"].size(); ++i) {
      if (!j["tools"][i].is_object()) return fail(error, fmt::format("tools[{}] must be an object", i));
    }
    if (!j["tools"].empty()) out->tools = j["tools"];
  }
  out->max_tokens = default_max_tokens;
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (!j.contains(key) || j[key].is_null()) continue;
    if (!j[key].is_number_integer() || j[key].get<int64_t>() < 1)
      return fail(error, fmt::format("'{}' must be a positive integer", key));
    out->max_tokens = static_cast<int>(std::min<int64_t>(j[key].get<int64_t>(), 1 << 20));
  }
  if (j.contains("temperature") && !j["temperature"].is_null()) {
    if (!j["temperature"].is_number()) return fail(error, "'temperature' must be a number");
    if (j["temperature"].get<double>() != 0.0)
      return fail(error, "only 'temperature': 0 is supported (the engine decodes greedily)");
  }
  if (j.contains("stream") && !j["stream"].is_null()) {
    if (!j["stream"].is_boolean()) return fail(error, "'stream' must be a boolean");
    if (j["stream"].get<bool>()) return fail(error, "streaming is not supported");
  }
  out->stop.clear();
  if (j.contains("stop") && !j["stop"].is_null()) {
    if (j["stop"].is_string()) {
      out->stop.push_back(j["stop"].get<std::string>());
    } else if (j["stop"].is_array()) {
      for (const auto& s : j["stop"]) {
        if (!s.is_string()) return fail(error, "'stop' must be a string or a list of strings");
        out->stop.push_back(s.get<std::string>());
      }
    } else {
      return fail(error, "'stop' must be a string or a list of strings");
    }
  }
  return true;
}

ojson completion_body(const inference::Generation& g, const std::string& model) {
  static std::atomic<uint64_t> counter{0};
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const int64_t created = std::chrono::duration_cast<std::chrono::seconds>(now).count();

  ojson message = {{"role", "assistant"}, {"content", g.text}};
  std::string finish = g.stop_reason == "max_tokens" ? "length" : "stop";
  QwenToolCalls parsed = parse_qwen_tool_calls(g.text);
  if (!parsed.calls.empty()) {
    ojson calls = ojson::array();
    for (size_t i = 0; i < parsed.calls.size(); ++i) {
      calls.push_back(
          {{"id", fmt::format("call_{}_{}", created, i)},
           {"type", "function"},
           {"function", {{"name", parsed.calls[i].name}, {"arguments", parsed.calls[i].arguments.dump()}}}});
    }
    message["content"] = parsed.content.empty() ? ojson(nullptr) : ojson(parsed.content);
    message["tool_calls"] = std::move(calls);
    finish = "tool_calls";
  }
  return {{"id", fmt::format("chatcmpl-{}-{}", created, counter++)},
          {"object", "chat.completion"},
          {"created", created},
          {"model", model},
          {"choices", ojson::array({{{"index", 0}, {"message", message}, {"finish_reason", finish}}})},
          {"usage",
           {{"prompt_tokens", g.prompt_tokens},
            {"completion_tokens", g.completion_tokens},
            {"total_tokens", g.prompt_tokens + g.completion_tokens}}}};
}

HttpReply ChatServer::health() const { return {200, ojson{{"status", "ok"}}}; }

HttpReply ChatServer::models() const {
  return {200, ojson{{"object", "list"},
                     {"data", ojson::array({{{"id", m_model}, {"object", "model"}, {"owned_by", "modelbuild"}}})}}};
}

HttpReply ChatServer::chat_completions(const std::string& body) {
  ChatRequest req;
  HttpReply error;
  if (!parse_chat_request(body, m_default_max_tokens, &req, &error)) return error;
  inference::GenerateOptions go;
  go.max_tokens = req.max_tokens;
  go.stop_strings = req.stop;
  std::lock_guard<std::mutex> lock(m_mutex);
  auto g = m_engine->generate(req.messages, req.tools, go);
  // The engine's only errors on a valid request are about the prompt itself
  // (too long for the context, a template it cannot render): the client's.
  if (!g.ok()) return error_reply(400, g.error().to_string());
  return {200, completion_body(*g, m_model)};
}

}  // namespace mb::gate
