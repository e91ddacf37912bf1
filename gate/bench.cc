#include "gate/bench.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <string>

namespace mb::gate {

Result<uint64_t> disk_size(const std::vector<fs::path>& paths) {
  std::set<std::pair<dev_t, ino_t>> seen;
  uint64_t total = 0;
  auto add = [&](const fs::path& p) -> Status {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return make_error(Errc::kIo, p.string(), "cannot stat: {}", std::strerror(errno));
    if (S_ISREG(st.st_mode) && seen.insert({st.st_dev, st.st_ino}).second) total += uint64_t(st.st_size);
    return {};
  };
  for (const fs::path& root : paths) {
    std::error_code ec;
    if (!fs::exists(root, ec)) return make_error(Errc::kNotFound, root.string(), "artifact does not exist");
    if (!fs::is_directory(root, ec)) {
      MB_TRY(add(root));
      continue;
    }
    for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::follow_directory_symlink, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      if (!it->is_directory(ec)) MB_TRY(add(it->path()));
    if (ec) return make_error(Errc::kIo, root.string(), "cannot list: {}", ec.message());
  }
  return total;
}

namespace {

// Writes all of `text` to `fd`, retrying short writes.
void write_all(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += size_t(n);
  }
}

// Errors cross the process boundary as {"error", "where", "code"}.
nlohmann::json error_json(const Error& e) { return {{"error", e.message}, {"where", e.where}, {"code", int(e.code)}}; }

// A reply from a child or the zygote: the object, or the error it carries.
Result<nlohmann::json> parse_reply(std::string_view text, const std::string& where, const char* who) {
  nlohmann::json reply = nlohmann::json::parse(text, nullptr, false);
  if (reply.is_discarded() || !reply.is_object())
    return make_error(Errc::kInternal, where, "the {} sent no report", who);
  if (reply.contains("error"))
    return Error{static_cast<Errc>(reply.value("code", int(Errc::kInternal))), reply.value("where", where),
                 reply.value("error", std::string("unknown error"))};
  return reply;
}

// The child: load, run the suite, send {"report": …} or {"error": …} back.
[[noreturn]] void child_main(int fd, const FileSystem& fs, const Suite& suite, const RunnerTarget& target,
                             const nlohmann::json& runner_config) {
  nlohmann::json out;
  try {
    NullReporter quiet;
    auto runner = make_runner(fs, runner_config, target);
    if (!runner.ok()) {
      out = error_json(runner.error());
    } else {
      auto report = run_gate(**runner, suite, runner_config, quiet, "bench");
      out = report.ok() ? nlohmann::json{{"report", report->to_json()}} : error_json(report.error());
    }
  } catch (const std::exception& e) {
    out = {{"error", e.what()}, {"where", target.model_dir.string()}, {"code", int(Errc::kInternal)}};
  }
  write_all(fd, out.dump());
  ::close(fd);
  // _exit: the child must not run the parent's atexit handlers or flush its
  // copies of the parent's stdio buffers.
  ::_exit(0);
}

struct ChildRun {
  GateReport report;
  uint64_t max_rss_bytes = 0;
};

Result<ChildRun> run_once(const FileSystem& fs, const Suite& suite, const RunnerTarget& target,
                          const nlohmann::json& runner_config) {
  const std::string where = target.model_dir.string();
  int fds[2];
  if (::pipe(fds) != 0) return make_error(Errc::kIo, where, "pipe: {}", std::strerror(errno));
  std::fflush(nullptr);  // so buffered output is not written twice
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return make_error(Errc::kIo, where, "fork: {}", std::strerror(errno));
  }
  if (pid == 0) {
    ::close(fds[0]);
    child_main(fds[1], fs, suite, target, runner_config);
  }
  ::close(fds[1]);
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, size_t(n));
  }
  ::close(fds[0]);
  int status = 0;
  struct rusage usage {};
  while (::wait4(pid, &status, 0, &usage) < 0) {
    if (errno != EINTR) return make_error(Errc::kIo, where, "wait4: {}", std::strerror(errno));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return make_error(
        Errc::kStepFailed, where, "the bench process died ({})",
        WIFSIGNALED(status) ? fmt::format("signal {}", WTERMSIG(status)) : fmt::format("exit {}", WEXITSTATUS(status)));
  MB_ASSIGN(nlohmann::json reply, parse_reply(text, where, "bench process"));
  MB_ASSIGN(GateReport report, GateReport::from_json(reply["report"]));
  // ru_maxrss is in kilobytes on Linux.
  return ChildRun{std::move(report), uint64_t(usage.ru_maxrss) * 1024};
}

}  // namespace

Result<BenchMeasurement> measure_in_child(const FileSystem& fs, const Suite& suite, const RunnerTarget& target,
                                          const nlohmann::json& runner_config, int runs) {
  BenchMeasurement best;
  bool have = false;
  for (int i = 0; i < std::max(runs, 1); ++i) {
    MB_ASSIGN(ChildRun run, run_once(fs, suite, target, runner_config));
    best.peak_memory_bytes = std::max(best.peak_memory_bytes, run.max_rss_bytes);
    const double t = run.report.load_seconds + run.report.avg_generation_seconds();
    if (!have || t < best.report.load_seconds + best.report.avg_generation_seconds())
      best.report = std::move(run.report);
    have = true;
  }
  return best;
}

namespace {

Result<std::string> read_line(int fd, const std::string& where) {
  std::string line;
  char c;
  for (;;) {
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(Errc::kIo, where, "read: {}", std::strerror(errno));
    if (n == 0) return make_error(Errc::kInternal, where, "the bench zygote exited");
    if (c == '\n') return line;
    line.push_back(c);
  }
}

// The zygote's loop: one request line in, one reply line out, until EOF.
[[noreturn]] void zygote_main(int in, int out) {
  auto fs = make_real_file_system();
  for (;;) {
    auto line = read_line(in, "zygote");
    if (!line.ok()) ::_exit(0);  // the parent closed the pipe
    nlohmann::json reply;
    nlohmann::json req = nlohmann::json::parse(*line, nullptr, false);
    RunnerTarget target;
    target.model_dir = req.value("model_dir", std::string());
    for (const auto& a : req.value("adapters", nlohmann::json::array()))
      target.adapters.push_back(a.get<std::string>());
    target.threads = req.value("threads", 0);
    auto suite = load_suite(*fs, req.value("suite_file", std::string()));
    if (!suite.ok()) {
      reply = error_json(suite.error());
    } else {
      auto m =
          measure_in_child(*fs, *suite, target, req.value("runner", nlohmann::json::object()), req.value("runs", 1));
      if (m.ok())
        reply = {{"report", m->report.to_json()}, {"peak_memory_bytes", m->peak_memory_bytes}};
      else
        reply = error_json(m.error());
    }
    write_all(out, reply.dump() + "\n");
  }
}

}  // namespace

Result<std::unique_ptr<BenchZygote>> BenchZygote::start() {
  int req[2], rep[2];
  if (::pipe2(req, O_CLOEXEC) != 0) return make_error(Errc::kIo, "bench", "pipe: {}", std::strerror(errno));
  if (::pipe2(rep, O_CLOEXEC) != 0) {
    ::close(req[0]);
    ::close(req[1]);
    return make_error(Errc::kIo, "bench", "pipe: {}", std::strerror(errno));
  }
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    for (int fd : {req[0], req[1], rep[0], rep[1]}) ::close(fd);
    return make_error(Errc::kIo, "bench", "fork: {}", std::strerror(errno));
  }
  if (pid == 0) {
    ::close(req[1]);
    ::close(rep[0]);
    zygote_main(req[0], rep[1]);
  }
  ::close(req[0]);
  ::close(rep[1]);
  return std::unique_ptr<BenchZygote>(new BenchZygote(pid, req[1], rep[0]));
}

BenchZygote::~BenchZygote() {
  ::close(m_to);  // EOF: the zygote exits
  ::close(m_from);
  int status = 0;
  while (::waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
  }
}

Result<BenchMeasurement> BenchZygote::measure(const fs::path& suite_file, const RunnerTarget& target,
                                              const nlohmann::json& runner_config, int runs) {
  const std::string where = target.model_dir.string();
  nlohmann::json req = {{"suite_file", suite_file.string()},
                        {"model_dir", target.model_dir.string()},
                        {"adapters", nlohmann::json::array()},
                        {"threads", target.threads},
                        {"runner", runner_config},
                        {"runs", runs}};
  for (const auto& a : target.adapters) req["adapters"].push_back(a.string());
  write_all(m_to, req.dump() + "\n");
  MB_ASSIGN(std::string line, read_line(m_from, where));
  MB_ASSIGN(nlohmann::json reply, parse_reply(line, where, "bench zygote"));
  BenchMeasurement m;
  MB_ASSIGN(m.report, GateReport::from_json(reply["report"]));
  m.peak_memory_bytes = reply.value("peak_memory_bytes", uint64_t{0});
  return m;
}

}  // namespace mb::gate
