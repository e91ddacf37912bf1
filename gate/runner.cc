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
    // The suite's tools go in as ordered_json so the prompt lists their keys
    // in the suite's order, as the model was trained to see them.
    const nlohmann::ordered_json no_tools;
    MB_ASSIGN(inference::Generation g,
              m_engine->generate(messages, suite.tools.empty() ? no_tools : suite.tools, opts));
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

std::unique_ptr<Runner> make_native_runner(std::unique_ptr<inference::Engine> engine) {
  return std::make_unique<NativeRunner>(std::move(engine));
}

Result<std::unique_ptr<Runner>> make_runner(const FileSystem& fs, const nlohmann::json& config,
                                            const RunnerTarget& target) {
  MB_TRY(validate_runner_config(config));
  const nlohmann::json c = config.is_object() ? config : nlohmann::json::object();
  const std::string type = c.value("type", std::string("native"));
  if (type == "command") return make_command_runner(c, target);
  if (type == "openai") return make_openai_runner(c, target);
  inference::LoadOptions lo;
  lo.adapters = target.adapters;
  lo.threads = target.threads;
  MB_ASSIGN(auto engine, inference::Engine::load(fs, target.model_dir, lo));
  return make_native_runner(std::move(engine));
}

}  // namespace mb::gate
