#pragma once
// Interrupt: what a modelbuild process does on SIGINT, SIGTERM and SIGHUP.
//
// Signals belong to the process, so this is the one piece of process-wide
// state in base/ (everything else is passed in). install() sets a handler
// that does nothing but write the signal number into a self-pipe; a watcher
// thread reads it and does the work outside signal context:
//   - the first signal sets the cancellation flag (the scheduler starts no
//     new step; rules that poll the flag stop early), sends SIGTERM to every
//     registered child process group and, kGraceMs later, SIGKILL to those
//     still registered;
//   - a second signal SIGKILLs every registered group, runs the last-resort
//     cleanup (the builder's: remove this process's temporaries) and exits
//     at once with exit_status().
// Every child modelbuild starts runs in its own process group (so a timeout
// kills its whole tree), which the terminal's Ctrl-C does not reach: whoever
// starts one registers it here (base/subprocess.cc, the gate's server) for
// as long as it may run. Registration after the first signal terminates the
// group at once, so no child started in the race window survives.
//
// Thread-safe. Without install() nothing is ever cancelled and registration
// only records.
#include <sys/types.h>

#include <atomic>
#include <functional>

namespace mb::interrupt {

// How long children get between SIGTERM and SIGKILL.
constexpr int kGraceMs = 2000;

// Installs the handlers for SIGINT, SIGTERM and SIGHUP and starts the
// watcher thread; later calls do nothing.
void install();

// True once a first signal arrived.
bool requested();
// The first signal that arrived (0: none).
int signal_number();
// The flag rules poll (StepContext::cancelled).
const std::atomic<bool>& flag();
// 128 + the first signal: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP.
int exit_status();
// "SIGINT", "SIGTERM", "SIGHUP".
const char* signal_name(int sig);

// A child process group to terminate on interrupt. REQUIRES: pgid > 0.
void add_child_group(pid_t pgid);
void remove_child_group(pid_t pgid);

// Run by the watcher thread just before a second signal's _exit; replaces
// any earlier one (nullptr: none). It must not wait on anything a worker
// thread may hold for long.
void set_last_resort_cleanup(std::function<void()> cleanup);

// For tests: forgets any signal that arrived (the handlers stay installed).
void reset_for_testing();

}  // namespace mb::interrupt
