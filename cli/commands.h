#pragma once
// The command-line front end. run() picks the subcommand (or `build` when
// the first word is not one) and hands it the rest of argv. Each subcommand
// lives in its own file (cli/<name>_command.cc) and only parses flags and
// calls into the library. Exit statuses: 0 ok, 1 a step failed, 2 bad input
// (nothing ran), 3 a gate failed; see docs/cli.md.
#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/reporter.h"
#include "graph/builder.h"
#include "graph/plan.h"
#include "graph/recipe.h"
#include "graph/rule.h"

namespace mb::cli {

// Flags every recipe-reading subcommand understands.
struct GlobalOptions {
  std::string file = "modelbuild.yaml";  // -f
  std::string directory;                 // -C
  std::string cache_dir;                 // --cache (or $MODELBUILD_CACHE)
  int jobs = 0;                          // -j
  bool verbose = false;                  // -v
  bool quiet = false;                    // --quiet
  bool json = false;                     // --json
};
void add_global_options(CLI::App& app, GlobalOptions& g);

// Everything a recipe command needs: filesystem, reporter, rules, recipe and
// where the cache and build directories are.
struct Session {
  std::unique_ptr<FileSystem> fs;
  std::unique_ptr<Reporter> reporter;
  Registry rules;
  Recipe recipe;
  BuildOptions build;
};
// Reads the recipe (exit 2 on any problem) and resolves directories.
Result<Session> open_session(const GlobalOptions& g);
// For the commands that only look (explain, status): the plan for `targets`
// (empty = all) and what building it would do, without running any step.
// Git pins are resolved first, as build does: a bad pin is bad input.
struct Evaluation {
  Plan plan;
  BuildReport report;
};
Result<Evaluation> evaluate_targets(Session& s, const std::vector<std::string>& targets);
// A reporter for commands that read no recipe.
std::unique_ptr<Reporter> make_cli_reporter(const GlobalOptions& g);

// Prints an error the way every command does and returns its exit status.
int report_error(Reporter& reporter, const Error& e);
int report_error(const Error& e);

using Command = int (*)(const std::vector<std::string>& args);
int build_command(const std::vector<std::string>& args);
int graph_command(const std::vector<std::string>& args);
int explain_command(const std::vector<std::string>& args);
int status_command(const std::vector<std::string>& args);
int cache_command(const std::vector<std::string>& args);
int gc_command(const std::vector<std::string>& args);
int inspect_command(const std::vector<std::string>& args);
int diff_command(const std::vector<std::string>& args);
int generate_command(const std::vector<std::string>& args);
int serve_command(const std::vector<std::string>& args);
int bench_command(const std::vector<std::string>& args);
int release_command(const std::vector<std::string>& args);
int verify_command(const std::vector<std::string>& args);
int keygen_command(const std::vector<std::string>& args);

// Parses args with a CLI11 app; returns -1 to continue, else an exit status
// (help printed → 0, bad flags → 2).
int parse_args(CLI::App& app, const std::vector<std::string>& args);

// Runs modelbuild with the given arguments; returns the process exit status.
int run(int argc, char** argv);

}  // namespace mb::cli
