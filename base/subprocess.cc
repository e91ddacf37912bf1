#include "base/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/interrupt.h"

extern char** environ;

namespace mb {
namespace {

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

Result<SubprocessResult> run_subprocess(const std::vector<std::string>& argv, const SubprocessOptions& options) {
  if (argv.empty()) return make_error(Errc::kInvalidInput, "", "empty command");
  int out_pipe[2], err_pipe[2], in_pipe[2], exec_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0 || ::pipe2(in_pipe, O_CLOEXEC) != 0 ||
      ::pipe2(exec_pipe, O_CLOEXEC) != 0)
    return make_error(Errc::kIo, argv[0], "pipe: {}", std::strerror(errno));

  std::vector<std::string> env_storage;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    std::string key = kv.substr(0, kv.find('='));
    if (!options.env.count(key)) env_storage.push_back(kv);
  }
  for (const auto& [k, v] : options.env) env_storage.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& s : env_storage) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& s : argv_copy) args.push_back(s.data());
  args.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) return make_error(Errc::kIo, argv[0], "fork: {}", std::strerror(errno));
  if (pid == 0) {
    ::setpgid(0, 0);  // own process group, so a timeout kills its children too
    ::dup2(in_pipe[0], 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    if (!options.cwd.empty() && ::chdir(options.cwd.c_str()) != 0) {
      int err = errno;
      (void)!::write(exec_pipe[1], &err, sizeof err);
      ::_exit(127);
    }
    ::execvpe(args[0], args.data(), envp.data());
    int err = errno;
    (void)!::write(exec_pipe[1], &err, sizeof err);
    ::_exit(127);
  }
  // Also from here, so that the group exists before anyone signals it; an
  // interrupt terminates the group (base/interrupt.h).
  ::setpgid(pid, pid);
  interrupt::add_child_group(pid);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ::close(in_pipe[0]);
  ::close(exec_pipe[1]);

  // Did exec succeed? The pipe closes on exec (CLOEXEC) or carries errno.
  int exec_errno = 0;
  ssize_t n = ::read(exec_pipe[0], &exec_errno, sizeof exec_errno);
  ::close(exec_pipe[0]);
  if (n == sizeof exec_errno) {
    ::waitpid(pid, nullptr, 0);
    interrupt::remove_child_group(pid);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    ::close(in_pipe[1]);
    return make_error(Errc::kNotFound, argv[0], "cannot run: {}", std::strerror(exec_errno));
  }

  SubprocessResult result;
  int fds[3] = {out_pipe[0], err_pipe[0], in_pipe[1]};
  size_t in_off = 0;
  if (options.stdin_text.empty())
    close_fd(fds[2]);
  else
    ::fcntl(fds[2], F_SETFL, O_NONBLOCK);
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  char buf[65536];
  while (fds[0] >= 0 || fds[1] >= 0) {
    pollfd pfd[3];
    int count = 0;
    int which[3];
    for (int k = 0; k < 3; ++k) {
      if (fds[k] < 0) continue;
      pfd[count] = {fds[k], static_cast<short>(k == 2 ? POLLOUT : POLLIN), 0};
      which[count++] = k;
    }
    int wait_ms = -1;
    if (options.timeout.count() > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        result.timed_out = true;
        ::kill(-pid, SIGKILL);
        break;
      }
      wait_ms = static_cast<int>(left.count());
    }
    int ready = ::poll(pfd, count, wait_ms);
    if (ready < 0 && errno == EINTR) continue;
    for (int p = 0; p < count; ++p) {
      if (!pfd[p].revents) continue;
      int k = which[p];
      if (k == 2) {
        ssize_t w = ::write(fds[2], options.stdin_text.data() + in_off, options.stdin_text.size() - in_off);
        if (w > 0) in_off += static_cast<size_t>(w);
        if (w < 0 && errno != EAGAIN) close_fd(fds[2]);
        if (in_off == options.stdin_text.size()) close_fd(fds[2]);
        continue;
      }
      ssize_t r = ::read(fds[k], buf, sizeof buf);
      if (r <= 0) {
        close_fd(fds[k]);
        continue;
      }
      if (result.output.size() < options.max_output) result.output.append(buf, static_cast<size_t>(r));
      if (k == 0 && result.stdout_text.size() < options.max_output)
        result.stdout_text.append(buf, static_cast<size_t>(r));
    }
  }
  for (int& fd : fds) close_fd(fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  interrupt::remove_child_group(pid);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

Result<std::vector<std::string>> split_command_line(std::string_view line) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quote == '\'') {
      if (c == '\'')
        quote = 0;
      else
        cur += c;
      continue;
    }
    if (quote == '"') {
      if (c == '"')
        quote = 0;
      else if (c == '\\' && i + 1 < line.size() && std::strchr("\"\\$`", line[i + 1]))
        cur += line[++i];
      else
        cur += c;
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < line.size()) {
      cur += line[++i];
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (quote) return make_error(Errc::kInvalidInput, std::string(line), "unterminated {} quote", quote);
  if (in_word) words.push_back(std::move(cur));
  return words;
}

std::string tail_lines(const std::string& text, int lines) {
  size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  for (int i = 0; i < lines && pos != std::string::npos && pos > 0; ++i) pos = text.rfind('\n', pos - 1);
  return pos == std::string::npos || pos == 0 ? text : text.substr(pos + 1);
}

}  // namespace mb
