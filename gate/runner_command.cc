#include "gate/runner_command.h"

#include <chrono>

#include "base/subprocess.h"
#include "base/temp_dir.h"
#include "gate/runner_config.h"

namespace mb::gate {
namespace {

class CommandRunner : public Runner {
 public:
  CommandRunner(std::vector<std::string> argv, RunnerTarget target, double timeout_s)
      : m_argv(std::move(argv)), m_target(std::move(target)), m_timeout_s(timeout_s) {}

  Result<RunnerReply> respond(const Suite& suite, const Case& c) override {
    TempDir tmp("modelbuild-runner");
    const fs::path prompt = tmp.path() / "prompt.txt", system = tmp.path() / "system.txt",
                   tools = tmp.path() / "tools.json";
    auto fs = make_real_file_system();
    MB_TRY(write_file_atomic(*fs, prompt, c.prompt));
    MB_TRY(write_file_atomic(*fs, system, suite.system));
    MB_TRY(write_file_atomic(*fs, tools, suite.tools.dump()));
    const std::vector<std::pair<std::string, std::string>> values = {
        {"model", m_target.model_dir.string()},
        {"adapter", m_target.adapters.empty() ? "" : m_target.adapters[0].string()},
        {"prompt_file", prompt.string()},
        {"system_file", system.string()},
        {"tools_file", tools.string()},
        {"max_tokens", std::to_string(suite.max_tokens)},
    };
    std::vector<std::string> argv;
    for (const auto& word : m_argv) argv.push_back(substitute(word, values));
    SubprocessOptions opts;
    opts.timeout = std::chrono::milliseconds(static_cast<int64_t>(m_timeout_s * 1000));
    auto start = std::chrono::steady_clock::now();
    auto res = run_subprocess(argv, opts);
    if (!res.ok())
      return make_error(Errc::kStepFailed, "runner", "command runner could not run '{}': {}", argv[0],
                        res.error().message);
    if (res->timed_out)
      return make_error(Errc::kStepFailed, "runner", "command runner '{}' timed out after {} s", argv[0], m_timeout_s);
    if (res->exit_code != 0) {
      std::string how = res->exit_code == -1 ? fmt::format("was killed by signal {}", res->signal)
                                             : fmt::format("exited with status {}", res->exit_code);
      return make_error(Errc::kStepFailed, "runner", "command runner '{}' {}: {}", argv[0], how,
                        tail_lines(res->output, 5));
    }
    RunnerReply r;
    r.text = res->stdout_text;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return r;
  }

 private:
  std::vector<std::string> m_argv;
  RunnerTarget m_target;
  double m_timeout_s;
};

}  // namespace

Result<std::unique_ptr<Runner>> make_command_runner(const nlohmann::json& c, const RunnerTarget& target) {
  MB_ASSIGN(auto argv, command_words(c.value("command", nlohmann::json()), "runner.command"));
  double timeout_s = c.contains("timeout_s") && c["timeout_s"].is_number() ? c["timeout_s"].get<double>() : 600.0;
  return std::unique_ptr<Runner>(new CommandRunner(std::move(argv), target, timeout_s));
}

}  // namespace mb::gate
