// Validation and canonical form of runner configurations.
#include "gate/runner_config.h"

#include <regex>

#include "base/subprocess.h"
#include "base/yaml_reader.h"
#include "gate/runner.h"

namespace mb::gate {
namespace {

const std::vector<std::string> kTypes = {"native", "command", "openai"};
const std::vector<std::string> kNativeKeys = {"type"};
const std::vector<std::string> kCommandKeys = {"type", "command", "timeout_s"};
const std::vector<std::string> kOpenAIKeys = {"type", "url", "model", "timeout_s", "server"};
const std::vector<std::string> kServerKeys = {"command", "url", "ready_timeout_s"};
constexpr const char* kDefaultUrl = "http://127.0.0.1:8080";

Error invalid(const std::string& where, std::string message) {
  return Error{Errc::kInvalidInput, where, std::move(message)};
}

Status check_keys(const nlohmann::json& object, const std::string& where, const std::vector<std::string>& allowed) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    std::string hint = did_you_mean(key, allowed);
    return invalid(where + "." + key, fmt::format("unknown key '{}'{}", key,
                                                  hint.empty() ? "" : fmt::format(" (did you mean '{}'?)", hint)));
  }
  return {};
}

Status check_string(const nlohmann::json& object, const std::string& key, const std::string& where) {
  if (object.contains(key) && !object[key].is_string())
    return invalid(where + "." + key, fmt::format("expected a string, got {}", object[key].type_name()));
  return {};
}

Status check_seconds(const nlohmann::json& object, const std::string& key, const std::string& where) {
  if (!object.contains(key)) return {};
  const auto& v = object[key];
  if (!v.is_number() || v.get<double>() <= 0 || v.get<double>() > 86400.0)
    return invalid(where + "." + key, "expected a number of seconds between 0 and 86400");
  return {};
}

Status check_command(const nlohmann::json& object, const std::string& where) {
  if (!object.contains("command")) return invalid(where, "needs 'command' (a string or a list of strings)");
  return command_words(object["command"], where + ".command").status();
}

}  // namespace

Result<std::vector<std::string>> command_words(const nlohmann::json& command, const std::string& where) {
  std::vector<std::string> argv;
  if (command.is_string()) {
    auto words = split_command_line(command.get<std::string>());
    if (!words.ok()) return invalid(where, words.error().message);
    argv = std::move(words).value();
  } else if (command.is_array()) {
    for (const auto& w : command) {
      if (!w.is_string()) return invalid(where, "every word of a command must be a string");
      argv.push_back(w.get<std::string>());
    }
  } else {
    return invalid(where, fmt::format("expected a string or a list of strings, got {}", command.type_name()));
  }
  if (argv.empty() || argv[0].empty()) return invalid(where, "the command is empty");
  return argv;
}

std::string substitute(std::string word, const std::vector<std::pair<std::string, std::string>>& values) {
  for (const auto& [key, value] : values) {
    const std::string token = "{" + key + "}";
    for (size_t p = 0; (p = word.find(token, p)) != std::string::npos; p += value.size())
      word.replace(p, token.size(), value);
  }
  return word;
}

std::string BaseUrl::origin() const { return fmt::format("{}://{}:{}", scheme, host, port); }
std::string BaseUrl::normalized() const { return origin() + prefix; }

Result<BaseUrl> parse_base_url(const std::string& url, const std::string& where) {
  static const std::regex re(R"(^(https?)://([A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?(/[^?#]*)?$)");
  std::smatch m;
  if (!std::regex_match(url, m, re))
    return invalid(where,
                   fmt::format("'{}' is not an http:// or https:// URL of the form scheme://host[:port][/path]", url));
  BaseUrl u;
  u.scheme = m[1];
  u.host = m[2];
  u.port = m[3].matched ? std::stoi(m[3]) : (u.scheme == "https" ? 443 : 80);
  if (u.port < 1 || u.port > 65535) return invalid(where, fmt::format("port {} is out of range", u.port));
  u.prefix = m[4].matched ? std::string(m[4]) : "";
  while (!u.prefix.empty() && u.prefix.back() == '/') u.prefix.pop_back();
  if (u.prefix.ends_with("/v1")) u.prefix.resize(u.prefix.size() - 3);
  return u;
}

std::string openai_url(const nlohmann::json& c) {
  if (c.contains("url") && c["url"].is_string()) return c["url"];
  if (c.contains("server") && c["server"].is_object() && c["server"].contains("url") && c["server"]["url"].is_string())
    return c["server"]["url"];
  return kDefaultUrl;
}

Status validate_runner_config(const nlohmann::json& config) {
  const std::string where = "runner";
  if (config.is_null()) return {};
  if (!config.is_object()) return invalid(where, fmt::format("expected a map, got {}", config.type_name()));
  std::string type = "native";
  if (config.contains("type")) {
    if (!config["type"].is_string()) return invalid(where + ".type", "expected native, command or openai");
    type = config["type"];
  }
  if (type == "native") return check_keys(config, where, kNativeKeys);
  if (type == "command") {
    MB_TRY(check_keys(config, where, kCommandKeys));
    MB_TRY(check_command(config, where));
    return check_seconds(config, "timeout_s", where);
  }
  if (type == "openai") {
    MB_TRY(check_keys(config, where, kOpenAIKeys));
    MB_TRY(check_string(config, "url", where));
    MB_TRY(check_string(config, "model", where));
    MB_TRY(check_seconds(config, "timeout_s", where));
    if (config.contains("server")) {
      const auto& server = config["server"];
      const std::string sw = where + ".server";
      if (!server.is_object()) return invalid(sw, fmt::format("expected a map, got {}", server.type_name()));
      MB_TRY(check_keys(server, sw, kServerKeys));
      MB_TRY(check_command(server, sw));
      MB_TRY(check_string(server, "url", sw));
      MB_TRY(check_seconds(server, "ready_timeout_s", sw));
      if (config.contains("url") && server.contains("url")) {
        MB_ASSIGN(BaseUrl a, parse_base_url(config["url"], where + ".url"));
        MB_ASSIGN(BaseUrl b, parse_base_url(server["url"], sw + ".url"));
        if (a.normalized() != b.normalized())
          return invalid(sw + ".url", fmt::format("'{}' differs from runner.url '{}'; give one of them",
                                                  server["url"].get<std::string>(), config["url"].get<std::string>()));
      }
    }
    return parse_base_url(openai_url(config), where + ".url").status();
  }
  std::string hint = did_you_mean(type, kTypes);
  return invalid(where + ".type", fmt::format("unknown runner type '{}' (native, command, openai){}", type,
                                              hint.empty() ? "" : fmt::format("; did you mean '{}'?", hint)));
}

nlohmann::json canonical_runner(const nlohmann::json& config) {
  nlohmann::json c = config.is_object() ? config : nlohmann::json::object();
  std::string type = c.contains("type") && c["type"].is_string() ? c["type"].get<std::string>() : "native";
  nlohmann::json out = {{"type", type}};
  if (type == "command") {
    auto argv = command_words(c.value("command", nlohmann::json()), "runner.command");
    out["command"] = argv.ok() ? nlohmann::json(*argv) : c.value("command", nlohmann::json());
  } else if (type == "openai") {
    auto url = parse_base_url(openai_url(c), "runner.url");
    out["url"] = url.ok() ? url->normalized() : openai_url(c);
    if (c.contains("model")) out["model"] = c["model"];
    if (c.contains("server") && c["server"].is_object()) {
      auto argv = command_words(c["server"].value("command", nlohmann::json()), "runner.server.command");
      out["server"] = {{"command", argv.ok() ? nlohmann::json(*argv) : c["server"].value("command", nlohmann::json())}};
    }
  } else if (type != "native") {
    return c;  // invalid; kept whole so that it never collides with a valid one
  }
  return out;
}

}  // namespace mb::gate
