#include "gate/suite.h"

#include "base/yaml_reader.h"

namespace mb::gate {
namespace {

const std::vector<std::string> kSuiteKeys = {"name", "system", "tools", "max_tokens", "classify", "cases"};
const std::vector<std::string> kCaseKeys = {"prompt", "expect", "tool"};
const std::vector<std::string> kClassifyKeys = {"tool_call_forms"};

}  // namespace

const char* expect_name(Expect e) { return e == Expect::kTool ? "tool" : "direct"; }

std::vector<std::string> Suite::tool_names() const {
  std::vector<std::string> names;
  for (const auto& t : tools) {
    if (t.contains("function") && t["function"].contains("name"))
      names.push_back(t["function"]["name"]);
    else if (t.contains("name"))
      names.push_back(t["name"]);
  }
  return names;
}

nlohmann::json Suite::canonical() const {
  nlohmann::json cases_json = nlohmann::json::array();
  for (const auto& c : cases)
    cases_json.push_back({{"prompt", c.prompt}, {"expect", expect_name(c.expect)}, {"tool", c.tool}});
  return {{"name", name},
          {"system", system},
          {"tools", tools.dump()},  // as rendered: order matters
          {"max_tokens", max_tokens},
          {"forms", {rule.qwen, rule.json, rule.openai}},
          {"cases", cases_json}};
}

Result<Suite> parse_suite(std::string_view text, const std::string& file) {
  YamlReader y(file);
  MB_ASSIGN(YAML::Node root, load_yaml(text, file));
  if (!root.IsDefined() || root.IsNull()) return make_error(Errc::kInvalidInput, file, "suite is empty");
  MB_TRY(y.check_keys(root, "the suite", kSuiteKeys));
  Suite s;
  if (root["name"]) {
    MB_ASSIGN(s.name, y.string(root["name"], "name"));
  }
  if (root["system"]) {
    MB_ASSIGN(s.system, y.string(root["system"], "system"));
  }
  if (root["max_tokens"]) {
    MB_ASSIGN(int64_t n, y.integer(root["max_tokens"], "max_tokens"));
    if (n < 1 || n > 32768) return y.error(root["max_tokens"], "max_tokens must be between 1 and 32768");
    s.max_tokens = static_cast<int>(n);
  }
  if (root["tools"]) {
    if (!root["tools"].IsSequence()) return y.error(root["tools"], "'tools' must be a list of tool definitions");
    for (const auto& t : root["tools"]) {
      MB_ASSIGN(auto tool, y.to_json(t));
      const auto* fn = tool.contains("function") ? &tool["function"] : nullptr;
      if (!tool.is_object() || !fn || !fn->is_object() || !fn->contains("name") || !(*fn)["name"].is_string())
        return y.error(t, "each tool needs {type: function, function: {name: …, description: …, parameters: …}}");
      s.tools.push_back(std::move(tool));
    }
  }
  if (root["classify"]) {
    MB_TRY(y.check_keys(root["classify"], "classify", kClassifyKeys));
    if (root["classify"]["tool_call_forms"]) {
      const YAML::Node forms = root["classify"]["tool_call_forms"];
      MB_ASSIGN(auto list, y.string_list(forms, "tool_call_forms"));
      s.rule = ClassifyRule{false, false, false};
      for (const auto& f : list) {
        if (f == "qwen")
          s.rule.qwen = true;
        else if (f == "json")
          s.rule.json = true;
        else if (f == "openai")
          s.rule.openai = true;
        else
          return y.error(forms, fmt::format("unknown tool-call form '{}' (qwen, json, openai)", f));
      }
    }
  }
  if (!root["cases"] || !root["cases"].IsSequence() || root["cases"].size() == 0)
    return y.error(root["cases"] ? root["cases"] : root, "the suite needs a non-empty list of 'cases'");
  auto names = s.tool_names();
  for (const auto& c : root["cases"]) {
    MB_TRY(y.check_keys(c, "a case", kCaseKeys));
    Case out;
    if (!c["prompt"]) return y.error(c, "a case needs 'prompt'");
    MB_ASSIGN(out.prompt, y.string(c["prompt"], "prompt"));
    if (!c["expect"]) return y.error(c, "a case needs 'expect' (tool or direct)");
    MB_ASSIGN(std::string e, y.string(c["expect"], "expect"));
    if (e == "tool")
      out.expect = Expect::kTool;
    else if (e == "direct")
      out.expect = Expect::kDirect;
    else {
      std::string hint = did_you_mean(e, {"tool", "direct"});
      return y.error(c["expect"], fmt::format("expect must be tool or direct, got '{}'{}", e,
                                              hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint)));
    }
    if (c["tool"]) {
      MB_ASSIGN(out.tool, y.string(c["tool"], "tool"));
      if (out.expect != Expect::kTool) return y.error(c["tool"], "'tool' only makes sense with expect: tool");
      if (!names.empty() && std::find(names.begin(), names.end(), out.tool) == names.end())
        return y.error(c["tool"],
                       fmt::format("tool '{}' is not among the suite's tools{}", out.tool,
                                   did_you_mean(out.tool, names).empty()
                                       ? ""
                                       : fmt::format(" (did you mean '{}'?)", did_you_mean(out.tool, names))));
    }
    s.cases.push_back(std::move(out));
  }
  return s;
}

Result<Suite> load_suite(const FileSystem& fs, const fs::path& file) {
  MB_ASSIGN(std::string text, fs.read_file(file));
  return parse_suite(text, file.string());
}

}  // namespace mb::gate
