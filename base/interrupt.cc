#include "base/interrupt.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

namespace mb::interrupt {
namespace {

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};

// Written by the handler (async-signal-safe), read by the watcher.
int g_pipe[2] = {-1, -1};
std::atomic<bool> g_flag{false};
std::atomic<int> g_signal{0};

std::mutex g_mu;                  // guards what follows
std::set<pid_t> g_groups;         // registered child process groups
std::function<void()> g_cleanup;  // the last-resort cleanup
std::once_flag g_installed;

void on_signal(int sig) {
  const int saved = errno;
  const unsigned char byte = static_cast<unsigned char>(sig);
  (void)!::write(g_pipe[1], &byte, 1);
  errno = saved;
}

void kill_groups(int sig) {
  std::lock_guard<std::mutex> lock(g_mu);
  for (pid_t g : g_groups) ::kill(-g, sig);
}

bool groups_left() {
  std::lock_guard<std::mutex> lock(g_mu);
  return !g_groups.empty();
}

// The first signal: cancel, and ask the children to stop. The flag is set
// before the lock is taken, so add_child_group() either sees it or its group
// is in the set we signal.
void first(int sig) {
  g_signal = sig;
  g_flag = true;
  kill_groups(SIGTERM);
}

[[noreturn]] void second() {
  kill_groups(SIGKILL);
  std::function<void()> cleanup;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    cleanup = g_cleanup;
  }
  if (cleanup) cleanup();
  ::_exit(exit_status());
}

// Reads signals from the pipe; between the first signal's SIGTERM and the
// end of the grace period it also wakes up to send SIGKILL.
void watch() {
  using Clock = std::chrono::steady_clock;
  std::optional<Clock::time_point> kill_at;
  for (;;) {
    int timeout = -1;
    if (kill_at) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*kill_at - Clock::now()).count();
      timeout = static_cast<int>(std::max<int64_t>(left, 0));
    }
    pollfd p{g_pipe[0], POLLIN, 0};
    const int ready = ::poll(&p, 1, timeout);
    if (ready < 0 && errno == EINTR) continue;
    if (ready > 0) {
      unsigned char byte = 0;
      if (::read(g_pipe[0], &byte, 1) != 1) continue;
      if (g_flag) second();
      first(byte);
      kill_at = Clock::now() + std::chrono::milliseconds(kGraceMs);
      continue;
    }
    if (kill_at && Clock::now() >= *kill_at) {
      if (groups_left()) kill_groups(SIGKILL);
      kill_at.reset();
    }
  }
}

}  // namespace

void install() {
  std::call_once(g_installed, [] {
    if (::pipe2(g_pipe, O_CLOEXEC) != 0) return;
    std::thread(watch).detach();
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;  // the watcher acts; blocked calls elsewhere carry on
    for (int sig : kSignals) ::sigaction(sig, &sa, nullptr);
  });
}

bool requested() { return g_flag.load(); }
int signal_number() { return g_signal.load(); }
const std::atomic<bool>& flag() { return g_flag; }
int exit_status() { return 128 + g_signal.load(); }

const char* signal_name(int sig) {
  switch (sig) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    case SIGHUP:
      return "SIGHUP";
  }
  return "a signal";
}

void add_child_group(pid_t pgid) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_groups.insert(pgid);
  if (g_flag) ::kill(-pgid, SIGTERM);  // started after the interrupt
}

void remove_child_group(pid_t pgid) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_groups.erase(pgid);
}

void set_last_resort_cleanup(std::function<void()> cleanup) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_cleanup = std::move(cleanup);
}

void reset_for_testing() {
  g_flag = false;
  g_signal = 0;
}

}  // namespace mb::interrupt
