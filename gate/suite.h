#pragma once
// Suite: a discrimination suite — does the model call a tool when it should,
// and answer directly when it should?
//
// A suite is a YAML file with a system prompt, optional OpenAI-style tool
// definitions, max_tokens, an optional classification rule, and cases of
// {prompt, expect: tool|direct, tool?}. See docs/gates.md. Parsing validates
// strictly and names file:line:col for every problem.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/result.h"

namespace mb::gate {

enum class Expect { kTool, kDirect };
const char* expect_name(Expect e);

struct Case {
  std::string prompt;
  Expect expect = Expect::kDirect;
  std::string tool;  // when expect is kTool: the tool that must be called ("" = any)
};

// Which response forms count as a tool call.
struct ClassifyRule {
  bool qwen = true;    // <tool_call>{…}</tool_call>
  bool json = true;    // a bare or ```json fenced object with "name" and "arguments"
  bool openai = true;  // a structured OpenAI tool_calls field
};

struct Suite {
  std::string name;
  std::string system;
  nlohmann::ordered_json tools = nlohmann::ordered_json::array();  // key order kept for rendering
  int max_tokens = 128;
  ClassifyRule rule;
  std::vector<Case> cases;

  std::vector<std::string> tool_names() const;
  // A canonical JSON form: what the suite means, not how it was written.
  nlohmann::json canonical() const;
};

Result<Suite> parse_suite(std::string_view text, const std::string& file);
Result<Suite> load_suite(const FileSystem& fs, const fs::path& file);

}  // namespace mb::gate
