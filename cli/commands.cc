#include "cli/commands.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

#include "release/git_source.h"
#include "rules/builtin.h"

namespace mb::cli {
namespace {

struct Entry {
  const char* name;
  Command fn;
  const char* help;
};

const Entry kCommands[] = {
    {"build", build_command, "build targets (the default: `modelbuild TARGET`)"},
    {"graph", graph_command, "print the step graph (--dot for Graphviz)"},
    {"explain", explain_command, "say why each stale step of a target would rerun"},
    {"status", status_command, "list targets as up to date, stale or failed"},
    {"cache", cache_command, "cache maintenance: `cache verify`"},
    {"gc", gc_command, "trim the cache, least recently used first"},
    {"inspect", inspect_command, "show a model's or adapter's tensors, quantization and size"},
    {"diff", diff_command, "compare two models tensor by tensor"},
    {"generate", generate_command, "generate text with the built-in CPU engine"},
    {"serve", serve_command, "serve a model over an OpenAI-compatible HTTP API"},
    {"bench", bench_command, "compare configurations: size, memory, speed, accuracy"},
    {"release", release_command, "write a gated target and its signed manifest"},
    {"verify", verify_command, "check a release directory against its manifest"},
    {"keygen", keygen_command, "make an Ed25519 key pair for signing releases"},
};

void print_usage() {
  std::printf("usage: modelbuild [TARGET...] [-f FILE] [-C DIR] [-j N] [-k] [-n] [-v|--quiet] [--json]\n");
  std::printf("       modelbuild COMMAND [ARGS...]\n\ncommands:\n");
  for (const auto& c : kCommands) std::printf("  %-9s %s\n", c.name, c.help);
  std::printf("\n`modelbuild COMMAND --help` shows a command's flags.\n");
}

}  // namespace

void add_global_options(CLI::App& app, GlobalOptions& g) {
  app.add_option("-f,--file", g.file, "recipe file")->capture_default_str();
  app.add_option("-C,--directory", g.directory, "change to DIR before doing anything");
  app.add_option("--cache", g.cache_dir, "cache directory (default: $MODELBUILD_CACHE or .modelbuild/)");
  app.add_option("-j,--jobs", g.jobs, "steps to run in parallel (default: number of cores)")
      ->check(CLI::Validator(  // -j 0 or -j -3 is a typo, not "unlimited"
          [](std::string& v) -> std::string {
            char* end = nullptr;
            const long n = std::strtol(v.c_str(), &end, 10);
            return end != v.c_str() && *end == 0 && n >= 1
                       ? ""
                       : "must be a whole number of steps, at least 1 (got " + v + ")";
          },
          "N>=1"));
  app.add_flag("-v,--verbose", g.verbose, "show debug messages");
  app.add_flag("--quiet", g.quiet, "show only warnings and errors");
  app.add_flag("--json", g.json, "emit machine-readable JSON events on stdout");
}

std::unique_ptr<Reporter> make_cli_reporter(const GlobalOptions& g) {
  Level level = g.verbose ? Level::kDebug : g.quiet ? Level::kWarn : Level::kInfo;
  return make_reporter(g.json ? ReporterStyle::kJson : ReporterStyle::kAuto, level);
}

int report_error(Reporter& reporter, const Error& e) {
  reporter.error(e.to_string());
  return exit_code_for(e.code);
}

int report_error(const Error& e) {
  std::fprintf(stderr, "modelbuild: %s\n", e.to_string().c_str());
  return exit_code_for(e.code);
}

Result<Session> open_session(const GlobalOptions& g) {
  Session s;
  s.fs = make_real_file_system();
  s.reporter = make_cli_reporter(g);
  register_builtin_rules(s.rules);
  // -C changes directory like make -C and git -C, so every relative path on
  // the command line (--suite, --svg, --to, --cache, ...) means the same thing
  // as it would after `cd DIR`.
  if (!g.directory.empty() && ::chdir(g.directory.c_str()) != 0)
    return make_error(Errc::kInvalidInput, g.directory, "cannot change to this directory: {}", std::strerror(errno));
  fs::path dir = fs::current_path();
  fs::path file = fs::path(g.file).is_absolute() ? fs::path(g.file) : dir / g.file;
  MB_ASSIGN(s.recipe, parse_recipe(*s.fs, file, s.rules));
  const fs::path project = s.recipe.dir;
  if (!g.cache_dir.empty())
    s.build.cache_dir = fs::absolute(g.cache_dir);
  else if (const char* env = std::getenv("MODELBUILD_CACHE"); env && *env)
    s.build.cache_dir = fs::absolute(env);
  else
    s.build.cache_dir = project / ".modelbuild";
  // The explain log stays with the project even when the cache is shared;
  // file digests live in the cache (<cache>/state/file-digests, see
  // docs/cache-format.md), since they are keyed by the files' stat identity.
  s.build.state_dir = project / ".modelbuild" / "state";
  s.build.build_dir = project / "build";
  s.build.jobs = g.jobs;
  return s;
}

Result<Evaluation> evaluate_targets(Session& s, const std::vector<std::string>& targets) {
  MB_ASSIGN(Plan plan, make_plan(s.recipe, s.rules, targets));
  NullReporter quiet;
  Builder builder(*s.fs, quiet, s.rules, s.build);
  MB_TRY(install_git_sources(*s.fs, s.recipe, plan, builder));
  MB_ASSIGN(BuildReport report, builder.evaluate(s.recipe, plan));
  return Evaluation{std::move(plan), std::move(report)};
}

int parse_args(CLI::App& app, const std::vector<std::string>& args) {
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them reversed
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp& e) {
    std::printf("%s", app.help().c_str());
    return 0;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "modelbuild %s: %s\n", app.get_name().c_str(), e.what());
    return 2;
  }
  return -1;
}

int run(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && (args[0] == "-h" || args[0] == "--help" || args[0] == "help")) {
    print_usage();
    return 0;
  }
  if (!args.empty() && args[0] == "--version") {
    std::printf("modelbuild %s\n", MODELBUILD_VERSION);
    return 0;
  }
  // The command is the first word that is not a global flag or its value,
  // so `modelbuild -C DIR bench` works like `modelbuild bench -C DIR`.
  Command fn = build_command;
  static const char* const kValued[] = {"-f", "--file", "-C", "--directory", "--cache", "-j", "--jobs"};
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (!a.empty() && a[0] == '-') {
      for (const char* v : kValued)
        if (a == v) ++i;  // skip its value
      continue;
    }
    for (const auto& c : kCommands) {
      if (a == c.name) {
        fn = c.fn;
        args.erase(args.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
    }
    break;
  }
  try {
    return fn(args);
  } catch (const std::exception& e) {
    // The one place exceptions stop: a bug or an unexpected library throw.
    std::fprintf(stderr, "modelbuild: internal error: %s\n", e.what());
    return 1;
  }
}

}  // namespace mb::cli
