#include "gate/runner.h"

#include <chrono>

#include "gate/runner_command.h"
#include "gate/runner_openai.h"
#include "inference/engine.h"

namespace mb::gate {
namespace {

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The in-process engine: greedy decoding of system + user with the suite's
// tools rendered into the system prompt the way the model's template does.
class NativeRunner : public Runner {
 public:
  explicit NativeRunner(std::unique_ptr<inference::Engine> engine) : m_engine(std::move(engine)) {}
  Result<RunnerReply> respond(const Suite& suite, const Case& c) override {
    std::vector<inference::ChatMessage> messages;
    if (!suite.system.empty()) messages.push_back({"system", suite.system});
    messages.push_back({"user", c.prompt});
    inference::GenerateOptions opts;
    opts.max_tokens = suite.max_tokens;
    auto start = std::chrono::steady_clock::now();
    nlohmann::json tools = suite.tools.empty() ? nlohmann::json() : nlohmann::json::parse(suite.tools.dump());
    MB_ASSIGN(inference::Generation g, m_engine->generate(messages, tools, opts));
    RunnerReply r;
    r.text = g.text;
    r.seconds = since(start);
    r.completion_tokens = g.completion_tokens;
    return r;
  }
  double load_seconds() const override { return m_engine->load_seconds(); }

 private:
  std::unique_ptr<inference::Engine> m_engine;
};

}  // namespace

nlohmann::json canonical_runner(const nlohmann::json& config) {
  nlohmann::json c = config.is_object() ? config : nlohmann::json::object();
  if (!c.contains("type")) c["type"] = "native";
  return c;  // nlohmann::json keeps object keys sorted
}

Result<std::unique_ptr<Runner>> make_runner(const FileSystem& fs, const nlohmann::json& config,
                                            const RunnerTarget& target) {
  nlohmann::json c = canonical_runner(config);
  std::string type = c["type"].is_string() ? c["type"].get<std::string>() : "";
  if (type == "native") {
    inference::LoadOptions lo;
    lo.adapters = target.adapters;
    lo.threads = target.threads;
    MB_ASSIGN(auto engine, inference::Engine::load(fs, target.model_dir, lo));
    return std::unique_ptr<Runner>(new NativeRunner(std::move(engine)));
  }
  if (type == "command") return make_command_runner(c, target);
  if (type == "openai") return make_openai_runner(c, target);
  return make_error(Errc::kInvalidInput, "runner", "unknown runner type '{}' (native, command, openai)", type);
}

}  // namespace mb::gate
