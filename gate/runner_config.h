#pragma once
// Pieces of runner configuration shared by the runners (internal to gate/).
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"

namespace mb::gate {

// A command as an argv: a list of strings, or a string split like a shell
// splits words. Errors name `where`.
Result<std::vector<std::string>> command_words(const nlohmann::json& command, const std::string& where);

// Replaces every `{key}` in `word` by its value.
std::string substitute(std::string word, const std::vector<std::pair<std::string, std::string>>& values);

// An http(s) base URL: "http://127.0.0.1:8080", "http://h:8080/v1/",
// "https://host/api". The path prefix loses a trailing "/" and "/v1", so
// endpoints are prefix + "/v1/chat/completions".
struct BaseUrl {
  std::string scheme;  // "http" or "https"
  std::string host;
  int port = 0;                    // the default for the scheme when the URL has none
  std::string prefix;              // "" or "/api"
  std::string origin() const;      // scheme://host:port, for httplib::Client
  std::string normalized() const;  // origin + prefix
};
Result<BaseUrl> parse_base_url(const std::string& url, const std::string& where);

// The base URL of an openai runner config (url, else server.url).
std::string openai_url(const nlohmann::json& config);

}  // namespace mb::gate
