#include "gate/chat_request.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <utility>

namespace mb::gate {
namespace {

using ojson = nlohmann::ordered_json;

Error bad(std::string where, std::string message) {
  return Error{Errc::kInvalidInput, std::move(where), std::move(message)};
}
Error unsupported(std::string where, std::string message) {
  return Error{Errc::kUnsupported, std::move(where), std::move(message)};
}

// Iterative, so that a hostile body cannot exhaust the stack here.
bool deeper_than(const ojson& root, size_t limit) {
  std::vector<std::pair<const ojson*, size_t>> todo{{&root, 1}};
  while (!todo.empty()) {
    auto [v, depth] = todo.back();
    todo.pop_back();
    if (!v->is_structured()) continue;
    if (depth > limit) return true;
    for (const ojson& child : *v) todo.emplace_back(&child, depth + 1);
  }
  return false;
}

Status parse_content(const ojson& c, const std::string& where, std::string& out) {
  if (c.is_null()) return {};
  if (c.is_string()) {
    out = c.get<std::string>();
    return {};
  }
  if (!c.is_array()) return bad(where, where + " must be a string, a list of text parts or null");
  // The parts form: [{"type": "text", "text": ...}, ...]. Images and audio
  // cannot be honoured by a text model.
  for (const auto& part : c) {
    if (part.is_object() && part.contains("type") && part["type"].is_string() && part["type"] != "text")
      return unsupported(where, fmt::format("{} parts of type '{}' are not supported (text only)", where,
                                            part["type"].get<std::string>()));
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
      return bad(where, where + " parts must be {\"type\": \"text\", \"text\": string}");
    out += part["text"].get<std::string>();
  }
  return {};
}

Status parse_message(ojson& m, const std::string& where, inference::ChatMessage& out) {
  if (!m.is_object()) return bad(where, where + " must be an object");
  if (!m.contains("role") || !m["role"].is_string()) return bad(where + ".role", where + ".role must be a string");
  out.role = m["role"].get<std::string>();
  if (out.role == "developer") out.role = "system";  // OpenAI's newer name for the system role
  if (out.role != "system" && out.role != "user" && out.role != "assistant" && out.role != "tool")
    return bad(where + ".role",
               fmt::format("{}.role '{}' is not one of system, developer, user, assistant, tool", where, out.role));
  if (m.contains("content")) MB_TRY(parse_content(m["content"], where + ".content", out.content));
  if (m.contains("tool_calls") && !m["tool_calls"].is_null()) {
    const std::string tw = where + ".tool_calls";
    if (out.role != "assistant") return bad(tw, tw + " is only allowed on assistant messages");
    if (!m["tool_calls"].is_array()) return bad(tw, tw + " must be a list");
    for (size_t i = 0; i < m["tool_calls"].size(); ++i) {
      const auto& c = m["tool_calls"][i];
      const std::string cw = fmt::format("{}[{}]", tw, i);
      if (!c.is_object() || !c.contains("function") || !c["function"].is_object() || !c["function"].contains("name") ||
          !c["function"]["name"].is_string())
        return bad(cw, cw + " must be {\"function\": {\"name\": string, \"arguments\": ...}}");
    }
    out.tool_calls = std::move(m["tool_calls"]);
  }
  return {};
}

// ---- one function per top-level field -------------------------------------

Status field_messages(ojson& v, ChatRequest& r) {
  if (!v.is_array() || v.empty()) return bad("messages", "'messages' must be a non-empty list");
  for (size_t i = 0; i < v.size(); ++i) {
    inference::ChatMessage m;
    MB_TRY(parse_message(v[i], fmt::format("messages[{}]", i), m));
    r.messages.push_back(std::move(m));
  }
  return {};
}

Status field_tools(ojson& v, ChatRequest& r) {
  if (!v.is_array()) return bad("tools", "'tools' must be a list");
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string where = fmt::format("tools[{}]", i);
    const ojson& t = v[i];
    if (!t.is_object()) return bad(where, where + " must be an object");
    if (t.value("type", "") != "function")
      return unsupported(where + ".type", where + ".type must be \"function\" (the only kind of tool supported)");
    if (!t.contains("function") || !t["function"].is_object() || !t["function"].contains("name") ||
        !t["function"]["name"].is_string())
      return bad(where + ".function", where + ".function must be an object with a string \"name\"");
    const std::string name = t["function"]["name"].get<std::string>();
    if (!valid_function_name(name))
      return bad(where + ".function.name",
                 fmt::format("{}.function.name '{}' must be 1 to 64 letters, digits, '_' or '-'", where, name));
    r.tool_names.push_back(name);
  }
  if (!v.empty()) r.tools = std::move(v);
  return {};
}

Status field_tool_choice(ojson& v, ChatRequest& r) {
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "auto")
      r.tool_choice = ToolChoice::kAuto;
    else if (s == "none")
      r.tool_choice = ToolChoice::kNone;
    else if (s == "required")
      r.tool_choice = ToolChoice::kRequired;
    else
      return bad("tool_choice", fmt::format("'tool_choice' '{}' is not one of none, auto, required", s));
    return {};
  }
  if (v.is_object() && v.value("type", "") == "function" && v.contains("function") && v["function"].is_object() &&
      v["function"].contains("name") && v["function"]["name"].is_string()) {
    r.tool_choice = ToolChoice::kFunction;
    r.forced_tool = v["function"]["name"].get<std::string>();
    return {};
  }
  return bad("tool_choice",
             "'tool_choice' must be \"none\", \"auto\", \"required\" or "
             "{\"type\": \"function\", \"function\": {\"name\": string}}");
}

// What is known only once every field is read.
struct Pending {
  int max_tokens = 0;             // 0 = not given
  int max_completion_tokens = 0;  // wins over max_tokens (OpenAI's newer name)
  bool stream_options = false;
};

Status field_max_tokens(const ojson& v, const std::string& key, int& out) {
  if (!v.is_number_integer() || v.get<int64_t>() < 1)
    return bad(key, fmt::format("'{}' must be a positive integer", key));
  out = static_cast<int>(std::min<int64_t>(v.get<int64_t>(), 1 << 20));
  return {};
}

Status field_stop(ojson& v, ChatRequest& r) {
  if (v.is_string()) {
    r.stop.push_back(v.get<std::string>());
    return {};
  }
  if (!v.is_array()) return bad("stop", "'stop' must be a string or a list of strings");
  for (const auto& s : v) {
    if (!s.is_string()) return bad("stop", "'stop' must be a string or a list of strings");
    r.stop.push_back(s.get<std::string>());
  }
  return {};
}

Status field_number(ojson& v, const char* key, double lo, double hi, double& out) {
  if (!v.is_number() || v.get<double>() < lo || v.get<double>() > hi)
    return bad(key, fmt::format("'{}' must be a number from {} to {}", key, lo, hi));
  out = v.get<double>();
  return {};
}

Status field_stream_options(ojson& v, ChatRequest& r) {
  if (!v.is_object()) return bad("stream_options", "'stream_options' must be an object");
  for (auto& [key, value] : v.items()) {
    if ((key != "include_usage" && key != "include_obfuscation") || !(value.is_boolean() || value.is_null()))
      return bad("stream_options." + key,
                 fmt::format("'stream_options.{}' is not a field of stream_options (include_usage: boolean)", key));
    if (key == "include_usage") r.include_usage = value.is_boolean() && value.get<bool>();
  }
  return {};
}

Status field_bool(ojson& v, const char* key, bool& out) {
  if (!v.is_boolean()) return bad(key, fmt::format("'{}' must be a boolean", key));
  out = v.get<bool>();
  return {};
}

// A field this server does not implement, accepted only at the value that
// means "off" (clients often send the defaults explicitly).
Status refuse_unless(const char* key, bool neutral, const char* what) {
  if (neutral) return {};
  return unsupported(key, fmt::format("'{}' is not supported: {}", key, what));
}

Status field_refused(const ojson& v, const std::string& key) {
  const char* k = key.c_str();
  if (key == "n") {
    if (!v.is_number_integer() || v.get<int64_t>() < 1) return bad(k, "'n' must be a positive integer");
    return refuse_unless(k, v.get<int64_t>() == 1, "one choice per request (n = 1)");
  }
  if (key == "logprobs") return refuse_unless(k, v.is_boolean() && !v.get<bool>(), "no log probabilities");
  if (key == "top_logprobs") return refuse_unless(k, v.is_number() && v.get<double>() == 0, "no log probabilities");
  if (key == "frequency_penalty" || key == "presence_penalty")
    return refuse_unless(k, v.is_number() && v.get<double>() == 0, "no repetition penalties (0 only)");
  if (key == "logit_bias") return refuse_unless(k, v.is_object() && v.empty(), "no logit bias");
  if (key == "response_format")
    return refuse_unless(k, v.is_object() && v.value("type", "") == "text" && v.size() == 1,
                         "text replies only (no json_object or json_schema)");
  if (key == "modalities")
    return refuse_unless(k, v == ojson::array({"text"}), "text replies only (modalities [\"text\"])");
  if (key == "store") return refuse_unless(k, v.is_boolean() && !v.get<bool>(), "completions are not stored");
  if (key == "functions" || key == "function_call")
    return unsupported(k, fmt::format("'{}' is not supported: use 'tools' and 'tool_choice'", key));
  // audio, prediction, reasoning_effort, web_search_options: no neutral value.
  return unsupported(k, fmt::format("'{}' is not supported by this server", key));
}

bool is_refused(const std::string& key) {
  static const char* const kRefused[] = {"n",
                                         "logprobs",
                                         "top_logprobs",
                                         "frequency_penalty",
                                         "presence_penalty",
                                         "logit_bias",
                                         "response_format",
                                         "modalities",
                                         "store",
                                         "functions",
                                         "function_call",
                                         "audio",
                                         "prediction",
                                         "reasoning_effort",
                                         "web_search_options"};
  return std::find(std::begin(kRefused), std::end(kRefused), key) != std::end(kRefused);
}

Status parse_field(const std::string& key, ojson& v, ChatRequest& r, Pending& p) {
  if (key == "messages") return field_messages(v, r);
  if (key == "tools") return field_tools(v, r);
  if (key == "tool_choice") return field_tool_choice(v, r);
  if (key == "parallel_tool_calls") return field_bool(v, "parallel_tool_calls", r.parallel_tool_calls);
  if (key == "max_tokens") return field_max_tokens(v, key, p.max_tokens);
  if (key == "max_completion_tokens") return field_max_tokens(v, key, p.max_completion_tokens);
  if (key == "stop") return field_stop(v, r);
  if (key == "temperature") return field_number(v, "temperature", 0, 2, r.sampling.temperature);
  if (key == "top_p") return field_number(v, "top_p", 0, 1, r.sampling.top_p);
  if (key == "seed") {
    if (!v.is_number_integer()) return bad("seed", "'seed' must be an integer");
    r.sampling.seed = v.is_number_unsigned() ? v.get<uint64_t>() : static_cast<uint64_t>(v.get<int64_t>());
    return {};
  }
  if (key == "stream") return field_bool(v, "stream", r.stream);
  if (key == "stream_options") {
    p.stream_options = true;
    return field_stream_options(v, r);
  }
  // Accepted and ignored: which model (there is one), and identifiers and
  // metadata that only matter to OpenAI's own bookkeeping.
  if (key == "model") return v.is_string() ? Status() : bad("model", "'model' must be a string");
  if (key == "user" || key == "metadata" || key == "service_tier") return {};
  if (is_refused(key)) return field_refused(v, key);
  return bad(key, fmt::format("unrecognized request field '{}'", key));
}

Status check_consistency(const Pending& p, ChatRequest& r, int default_max_tokens) {
  if (r.messages.empty()) return bad("messages", "'messages' is required");
  r.max_tokens = p.max_completion_tokens ? p.max_completion_tokens : p.max_tokens ? p.max_tokens : default_max_tokens;
  if (r.tool_choice == ToolChoice::kRequired && r.tools.is_null())
    return bad("tool_choice", "'tool_choice' 'required' needs a non-empty 'tools' list");
  if (r.tool_choice == ToolChoice::kFunction &&
      std::find(r.tool_names.begin(), r.tool_names.end(), r.forced_tool) == r.tool_names.end())
    return bad("tool_choice",
               fmt::format("'tool_choice' names the function '{}', which is not in 'tools'", r.forced_tool));
  if (p.stream_options && !r.stream)
    return bad("stream_options", "'stream_options' is only allowed when 'stream' is true");
  return {};
}

}  // namespace

bool valid_function_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

Result<ChatRequest> parse_chat_request(std::string_view body, int default_max_tokens) {
  ojson j = ojson::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad("", "the request body is not valid JSON");
  if (!j.is_object()) return bad("", "the request body must be a JSON object");
  if (deeper_than(j, kMaxRequestDepth))
    return bad("", fmt::format("the request body is nested deeper than {} levels", kMaxRequestDepth));
  ChatRequest r;
  Pending p;
  for (auto& [key, value] : j.items()) {
    if (value.is_null() && key != "messages") continue;  // null means "the default", as OpenAI reads it
    MB_TRY(parse_field(key, value, r, p));
  }
  MB_TRY(check_consistency(p, r, default_max_tokens));
  return r;
}

}  // namespace mb::gate
