#include "inference/chat_template.h"

#include <charconv>
#include <cmath>
#include <utility>
#include <vector>

namespace mb::inference {

using OJson = nlohmann::ordered_json;

namespace {

// ---- Python json.dumps ------------------------------------------------------

void dump_string(const std::string& s, std::string& out) {
  out.push_back('"');
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        } else {
          out.push_back(c);  // ensure_ascii=False: UTF-8 (and DEL) pass through
        }
    }
  }
  out.push_back('"');
}

// Python's float repr: the shortest digits that round-trip, in fixed
// notation when the decimal exponent is in [-4, 16), else scientific with a
// signed exponent of at least two digits.
void dump_float(double v, std::string& out) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v < 0 ? "-Infinity" : "Infinity";
    return;
  }
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));  // "-1.2345e+17"
  bool negative = sci.front() == '-';
  if (negative) sci.remove_prefix(1);
  size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') digits.push_back(c);
  }
  int exponent = 0;
  std::string_view exp_text = sci.substr(e_pos + 1);
  if (exp_text.front() == '+') exp_text.remove_prefix(1);
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exponent);

  if (negative) out.push_back('-');
  if (exponent >= -4 && exponent < 16) {
    if (exponent >= 0) {
      auto int_len = static_cast<size_t>(exponent) + 1;
      if (digits.size() < int_len) digits.append(int_len - digits.size(), '0');
      out.append(digits, 0, int_len);
      out.push_back('.');
      out += digits.size() > int_len ? digits.substr(int_len) : "0";
    } else {
      out += "0.";
      out.append(static_cast<size_t>(-exponent - 1), '0');
      out += digits;
    }
  } else {
    out.push_back(digits[0]);
    if (digits.size() > 1) {
      out.push_back('.');
      out.append(digits, 1);
    }
    out += fmt::format("e{}{:02d}", exponent < 0 ? '-' : '+', std::abs(exponent));
  }
}

void dump(const OJson& v, std::string& out) {
  switch (v.type()) {
    case OJson::value_t::null:
      out += "null";
      break;
    case OJson::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      break;
    case OJson::value_t::number_integer:
      out += std::to_string(v.get<int64_t>());
      break;
    case OJson::value_t::number_unsigned:
      out += std::to_string(v.get<uint64_t>());
      break;
    case OJson::value_t::number_float:
      dump_float(v.get<double>(), out);
      break;
    case OJson::value_t::string:
      dump_string(v.get_ref<const std::string&>(), out);
      break;
    case OJson::value_t::array: {
      out.push_back('[');
      bool first = true;
      for (const OJson& item : v) {
        if (!first) out += ", ";
        first = false;
        dump(item, out);
      }
      out.push_back(']');
      break;
    }
    case OJson::value_t::object: {
      out.push_back('{');
      bool first = true;
      for (const auto& [key, item] : v.items()) {
        if (!first) out += ", ";
        first = false;
        dump_string(key, out);
        out += ": ";
        dump(item, out);
      }
      out.push_back('}');
      break;
    }
    case OJson::value_t::binary:
    case OJson::value_t::discarded:
      out += "null";
      break;
  }
}

// The serializer recurses; request JSON nested deeper than this is refused
// rather than risking the stack (Python itself stops near 1000).
constexpr size_t kMaxJsonDepth = 256;

bool too_deep(const OJson& root) {
  std::vector<std::pair<const OJson*, size_t>> todo{{&root, 1}};
  while (!todo.empty()) {
    auto [v, depth] = todo.back();
    todo.pop_back();
    if (!v->is_structured()) continue;
    if (depth > kMaxJsonDepth) return true;
    for (const OJson& child : *v) todo.emplace_back(&child, depth + 1);
  }
  return false;
}

// ---- messages ---------------------------------------------------------------

Error bad_message(size_t index, std::string_view key, std::string message) {
  return Error{Errc::kInvalidInput, fmt::format("messages[{}]{}", index, key), std::move(message)};
}

// A message's content as text: strings as they are, null as "", and the
// OpenAI list-of-parts form joined.
Result<std::string> content_text(const OJson& message, size_t index) {
  auto it = message.find("content");
  if (it == message.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    std::string text;
    for (const OJson& part : *it) {
      auto type = part.is_object() ? part.find("type") : part.end();
      auto value = part.is_object() ? part.find("text") : part.end();
      if (type == part.end() || value == part.end() || *type != "text" || !value->is_string()) {
        return bad_message(index, ".content", "only {\"type\": \"text\", \"text\": ...} parts are supported");
      }
      text += value->get<std::string>();
    }
    return text;
  }
  return bad_message(index, ".content",
                     fmt::format("expected a string, null or a list of parts, got {}", it->type_name()));
}

const OJson* tool_calls_of(const OJson& message) {
  auto it = message.find("tool_calls");
  if (it == message.end() || !it->is_array() || it->empty()) return nullptr;  // falsy in Jinja
  return &*it;
}

Status render_tool_call(const OJson& call, size_t index, size_t k, std::string& out) {
  const OJson* fn = &call;
  if (auto it = call.find("function"); call.is_object() && it != call.end()) fn = &*it;
  std::string key = fmt::format(".tool_calls[{}]", k);
  if (!fn->is_object()) return bad_message(index, key, "expected an object");
  auto name = fn->find("name");
  if (name == fn->end() || !name->is_string()) return bad_message(index, key, "missing function name");
  std::string arguments = "{}";
  if (auto args = fn->find("arguments"); args != fn->end()) {
    // OpenAI sends arguments as a JSON string; the template renders the
    // object, so parse it back. A string that is not JSON stays a string.
    OJson value = *args;
    if (args->is_string()) {
      OJson parsed = OJson::parse(args->get_ref<const std::string&>(), nullptr, /*allow_exceptions=*/false);
      if (!parsed.is_discarded()) value = std::move(parsed);
    }
    if (too_deep(value)) return bad_message(index, key, "arguments nested too deeply");
    arguments = python_json_dumps(value);
  }
  out += "\n<tool_call>\n{\"name\": \"";
  out += name->get<std::string>();
  out += "\", \"arguments\": ";
  out += arguments;
  out += "}\n</tool_call>";
  return Status();
}

constexpr std::string_view kToolsIntro =
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
constexpr std::string_view kToolsOutro =
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
    "<args-json-object>}\n</tool_call><|im_end|>\n";

}  // namespace

std::string python_json_dumps(const OJson& value) {
  std::string out;
  dump(value, out);
  return out;
}

Result<std::string> render_chatml_json(const OJson& messages, const OJson& tools, bool add_generation_prompt,
                                       std::string_view default_system) {
  if (!messages.is_array()) return make_error(Errc::kInvalidInput, "messages", "expected an array");
  if (!tools.is_null() && !tools.is_array()) return make_error(Errc::kInvalidInput, "tools", "expected an array");
  if (too_deep(tools)) return make_error(Errc::kInvalidInput, "tools", "nested too deeply");
  std::vector<std::string> roles, contents;
  for (size_t i = 0; i < messages.size(); ++i) {
    const OJson& m = messages[i];
    if (!m.is_object()) return bad_message(i, "", "expected an object");
    auto role = m.find("role");
    if (role == m.end() || !role->is_string()) return bad_message(i, ".role", "missing or not a string");
    const std::string& r = role->get_ref<const std::string&>();
    if (r != "system" && r != "user" && r != "assistant" && r != "tool") {
      return bad_message(i, ".role", fmt::format("\"{}\" is not one of system, user, assistant, tool", r));
    }
    roles.push_back(r);
    MB_ASSIGN(std::string text, content_text(m, i));
    contents.push_back(std::move(text));
  }

  std::string out;
  bool first_is_system = !roles.empty() && roles[0] == "system";
  std::string_view system = first_is_system ? std::string_view(contents[0]) : default_system;
  if (tools.is_array() && !tools.empty()) {
    out += "<|im_start|>system\n";
    if (first_is_system || !default_system.empty()) {
      out += system;
      out += "\n\n";
    }
    out += kToolsIntro;
    for (const OJson& tool : tools) {
      out += '\n';
      out += python_json_dumps(tool);
    }
    out += kToolsOutro;
  } else if (first_is_system || !default_system.empty()) {
    out += "<|im_start|>system\n";
    out += system;
    out += "<|im_end|>\n";
  }

  for (size_t i = 0; i < roles.size(); ++i) {
    const std::string& role = roles[i];
    const OJson* calls = role == "assistant" ? tool_calls_of(messages[i]) : nullptr;
    if (role == "user" || (role == "system" && i != 0) || (role == "assistant" && calls == nullptr)) {
      out += "<|im_start|>" + role + "\n" + contents[i] + "<|im_end|>\n";
    } else if (role == "assistant") {
      out += "<|im_start|>assistant";
      if (!contents[i].empty()) out += "\n" + contents[i];
      for (size_t k = 0; k < calls->size(); ++k) MB_TRY(render_tool_call((*calls)[k], i, k, out));
      out += "<|im_end|>\n";
    } else if (role == "tool") {
      // Consecutive tool results share one user turn.
      if (i == 0 || roles[i - 1] != "tool") out += "<|im_start|>user";
      out += "\n<tool_response>\n" + contents[i] + "\n</tool_response>";
      if (i + 1 == roles.size() || roles[i + 1] != "tool") out += "<|im_end|>\n";
    }
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

Result<std::string> render_chatml(std::span<const ChatMessage> messages, const OJson& tools, bool add_generation_prompt,
                                  std::string_view default_system) {
  OJson list = OJson::array();
  for (const ChatMessage& m : messages) {
    OJson item{{"role", m.role}, {"content", m.content}};
    if (!m.tool_calls.is_null()) item["tool_calls"] = m.tool_calls;
    list.push_back(std::move(item));
  }
  return render_chatml_json(list, tools, add_generation_prompt, default_system);
}

}  // namespace mb::inference
