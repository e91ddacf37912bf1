#include "gate/runner_command.h"

#include <chrono>

#include "base/subprocess.h"
#include "base/temp_dir.h"

namespace mb::gate {
namespace {

class CommandRunner : public Runner {
 public:
  CommandRunner(std::vector<std::string> argv, RunnerTarget target, std::chrono::milliseconds timeout)
      : m_argv(std::move(argv)), m_target(std::move(target)), m_timeout(timeout) {}

  Result<RunnerReply> respond(const Suite& suite, const Case& c) override {
    TempDir tmp("modelbuild-runner");
    const fs::path prompt = tmp.path() / "prompt.txt", system = tmp.path() / "system.txt",
                   tools = tmp.path() / "tools.json";
    auto fs = make_real_file_system();
    MB_TRY(write_file_atomic(*fs, prompt, c.prompt));
    MB_TRY(write_file_atomic(*fs, system, suite.system));
    MB_TRY(write_file_atomic(*fs, tools, suite.tools.dump()));
    std::vector<std::string> argv;
    for (const auto& word : m_argv) {
      std::string w = word;
      auto replace = [&](const std::string& key, const std::string& value) {
        for (size_t p; (p = w.find(key)) != std::string::npos;) w.replace(p, key.size(), value);
      };
      replace("{model}", m_target.model_dir.string());
      replace("{prompt_file}", prompt.string());
      replace("{system_file}", system.string());
      replace("{tools_file}", tools.string());
      replace("{max_tokens}", std::to_string(suite.max_tokens));
      replace("{adapter}", m_target.adapters.empty() ? "" : m_target.adapters[0].string());
      argv.push_back(std::move(w));
    }
    SubprocessOptions opts;
    opts.timeout = m_timeout;
    auto start = std::chrono::steady_clock::now();
    MB_ASSIGN(SubprocessResult res, run_subprocess(argv, opts));
    if (res.timed_out)
      return make_error(Errc::kStepFailed, "runner", "command runner timed out after {} s", m_timeout.count() / 1000);
    if (res.exit_code != 0)
      return make_error(Errc::kStepFailed, "runner", "command runner exited with status {}: {}", res.exit_code,
                        tail_lines(res.output, 5));
    RunnerReply r;
    r.text = res.stdout_text;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return r;
  }

 private:
  std::vector<std::string> m_argv;
  RunnerTarget m_target;
  std::chrono::milliseconds m_timeout;
};

}  // namespace

Result<std::unique_ptr<Runner>> make_command_runner(const nlohmann::json& c, const RunnerTarget& target) {
  std::vector<std::string> argv;
  if (c.contains("command") && c["command"].is_string()) {
    MB_ASSIGN(argv, split_command_line(c["command"].get<std::string>()));
  } else if (c.contains("command") && c["command"].is_array()) {
    for (const auto& w : c["command"]) {
      if (!w.is_string()) return make_error(Errc::kInvalidInput, "runner", "command words must be strings");
      argv.push_back(w);
    }
  }
  if (argv.empty()) return make_error(Errc::kInvalidInput, "runner", "the command runner needs 'command'");
  double timeout_s = c.value("timeout_s", 600.0);
  return std::unique_ptr<Runner>(
      new CommandRunner(std::move(argv), target, std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000))));
}

}  // namespace mb::gate
