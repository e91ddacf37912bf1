#include "gate/classify.h"

#include <algorithm>

namespace mb::gate {
namespace {

using OJson = nlohmann::ordered_json;

// Parses a call object; returns false (with a note) when it is not one.
bool as_call(const OJson& j, ToolCall* out, std::string* note) {
  if (!j.is_object()) {
    *note = "not a JSON object";
    return false;
  }
  if (!j.contains("name") || !j["name"].is_string()) {
    *note = "no string \"name\"";
    return false;
  }
  if (!j.contains("arguments")) {
    *note = fmt::format("call to '{}' has no \"arguments\"", j["name"].get<std::string>());
    return false;
  }
  OJson args = j["arguments"];
  if (args.is_string()) {  // OpenAI style: arguments as a JSON string
    args = OJson::parse(args.get<std::string>(), nullptr, false);
    if (args.is_discarded()) {
      *note = "\"arguments\" is a string that is not JSON";
      return false;
    }
  }
  if (!args.is_object()) {
    *note = "\"arguments\" is not an object";
    return false;
  }
  out->name = j["name"].get<std::string>();
  out->arguments = std::move(args);
  return true;
}

// The end of the balanced JSON object starting at text[start] == '{', or npos.
size_t object_end(const std::string& text, size_t start) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = start; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '{')
      ++depth;
    else if (c == '}' && --depth == 0)
      return i + 1;
  }
  return std::string::npos;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

void json_calls(const std::string& text, Classification& k) {
  for (size_t pos = text.find('{'); pos != std::string::npos; pos = text.find('{', pos + 1)) {
    size_t stop = object_end(text, pos);
    if (stop == std::string::npos) break;
    auto j = OJson::parse(text.substr(pos, stop - pos), nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("name")) continue;
    ToolCall call;
    std::string note;
    if (as_call(j, &call, &note)) {
      k.calls.push_back(std::move(call));
      pos = stop - 1;
    } else {
      k.notes.push_back("JSON object that is not a call: " + note);
    }
  }
}

}  // namespace

QwenToolCalls parse_qwen_tool_calls(const std::string& text) {
  const std::string open = "<tool_call>", close = "</tool_call>";
  QwenToolCalls out;
  std::string outside;  // text with the valid blocks cut out
  size_t copied = 0, pos = 0;
  while ((pos = text.find(open, pos)) != std::string::npos) {
    size_t body = pos + open.size();
    size_t end = text.find(close, body);
    size_t block_end = end == std::string::npos ? text.size() : end + close.size();
    std::string inner = text.substr(body, end == std::string::npos ? std::string::npos : end - body);
    auto j = OJson::parse(inner, nullptr, false);
    if (j.is_discarded()) {
      // Trailing text after a complete object (e.g. the limit cut the close tag)?
      size_t brace = inner.find('{');
      size_t stop = brace == std::string::npos ? std::string::npos : object_end(inner, brace);
      if (stop != std::string::npos) j = OJson::parse(inner.substr(brace, stop - brace), nullptr, false);
    }
    ToolCall call;
    std::string note;
    if (j.is_discarded()) {
      out.notes.push_back("malformed JSON inside <tool_call>: not counted as a call");
    } else if (as_call(j, &call, &note)) {
      out.calls.push_back(std::move(call));
      outside += text.substr(copied, pos - copied);
      copied = block_end;
    } else {
      out.notes.push_back("<tool_call> without a valid call: " + note);
    }
    pos = block_end;
  }
  outside += text.substr(std::min(copied, text.size()));
  out.content = trim(outside);
  return out;
}

Classification classify(const std::string& text, const nlohmann::json& structured, const ClassifyRule& rule,
                        const std::vector<std::string>& known_tools) {
  Classification k;
  if (rule.openai && structured.is_array()) {
    for (const auto& tc : structured) {
      ToolCall call;
      std::string note;
      const OJson fn(tc.is_object() && tc.contains("function") ? tc["function"] : tc);
      if (as_call(fn, &call, &note))
        k.calls.push_back(std::move(call));
      else
        k.notes.push_back("tool_calls entry that is not a call: " + note);
    }
    if (!k.calls.empty()) k.form = "openai";
  }
  if (k.calls.empty() && rule.qwen) {
    QwenToolCalls q = parse_qwen_tool_calls(text);
    k.calls = std::move(q.calls);
    k.notes.insert(k.notes.end(), q.notes.begin(), q.notes.end());
    if (!k.calls.empty()) k.form = "qwen";
  }
  if (k.calls.empty() && rule.json && text.find("<tool_call>") == std::string::npos) {
    json_calls(text, k);
    if (!k.calls.empty()) k.form = "json";
  }
  k.is_tool_call = !k.calls.empty();
  for (const auto& c : k.calls)
    if (!known_tools.empty() && std::find(known_tools.begin(), known_tools.end(), c.name) == known_tools.end())
      k.notes.push_back(fmt::format("called '{}', which the suite does not define", c.name));
  return k;
}

bool case_passes(const Case& c, const Classification& k, std::string* why) {
  if (c.expect == Expect::kDirect) {
    if (k.is_tool_call) *why = fmt::format("called {} instead of answering directly", k.calls.front().name);
    return !k.is_tool_call;
  }
  if (!k.is_tool_call) {
    *why = "answered directly instead of calling a tool";
    if (!k.notes.empty()) *why += " (" + k.notes.front() + ")";
    return false;
  }
  if (!c.tool.empty()) {
    for (const auto& call : k.calls)
      if (call.name == c.tool) return true;
    *why = fmt::format("called {} instead of {}", k.calls.front().name, c.tool);
    return false;
  }
  return true;
}

}  // namespace mb::gate
