// `modelbuild generate --model DIR|FILE.gguf [--adapter DIR]... [--system TEXT |
// --system-file F] (--prompt TEXT | --prompt-file F) [--tools-file F.json]
// [--max-tokens N] [--threads N] [--json]`: greedy completion of one chat
// turn with the built-in CPU engine. A thin front on inference::Engine.
//
// The completion streams to stdout as it is decoded (flushed piece by piece)
// and nothing else goes to stdout, so the command can serve as a gate's
// command runner: `{adapter}` expands to "" for a target without adapters
// and an empty system file means "no system message", exactly as the native
// runner treats an empty suite system. Figures go to stderr afterwards;
// --json prints one object (text + figures) on stdout instead.
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>

#include "cli/commands.h"
#include "inference/engine.h"

namespace mb::cli {
namespace {

struct GenerateFlags {
  std::string model;
  std::vector<std::string> adapters;
  std::string system, system_file, prompt, prompt_file, tools_file;
  bool has_system = false, has_prompt = false;
  int max_tokens = 256;
  int threads = 0;
  bool json = false;
};

Result<std::string> read_text(const FileSystem& fs, const std::string& path, std::string_view what) {
  auto text = fs.read_file(fs::absolute(path));
  if (!text.ok()) return make_error(Errc::kInvalidInput, path, "cannot read the {}: {}", what, text.error().message);
  return std::move(*text);
}

// The tools file holds an OpenAI-style `tools` array (what the command
// runner writes). Parsed into ordered_json: the template prints keys in
// file order.
Result<nlohmann::ordered_json> read_tools(const FileSystem& fs, const std::string& path) {
  if (path.empty()) return nlohmann::ordered_json();
  MB_ASSIGN(std::string text, read_text(fs, path, "tools file"));
  auto tools = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (tools.is_discarded()) return make_error(Errc::kInvalidInput, path, "the tools file is not valid JSON");
  if (!tools.is_array()) return make_error(Errc::kInvalidInput, path, "the tools file must hold a JSON array of tools");
  return tools;
}

uint64_t peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;  // Linux reports KiB
}

void print_figures(const inference::Engine& engine, const inference::Generation& g, uint64_t rss) {
  std::fprintf(stderr,
               "load %.3f s, first token %.3f s, prefill %d tokens at %.1f tok/s, decode %d tokens at %.1f tok/s "
               "(stop: %s), peak memory %.1f MiB\n",
               engine.load_seconds(), g.time_to_first_token_seconds, g.prompt_tokens, g.prefill_tokens_per_second,
               g.completion_tokens, g.decode_tokens_per_second, g.stop_reason.c_str(), rss / 1048576.0);
}

nlohmann::ordered_json figures_json(const inference::Engine& engine, const inference::Generation& g, uint64_t rss) {
  return {{"text", g.text},
          {"stop_reason", g.stop_reason},
          {"prompt_tokens", g.prompt_tokens},
          {"completion_tokens", g.completion_tokens},
          {"load_seconds", engine.load_seconds()},
          {"time_to_first_token_seconds", g.time_to_first_token_seconds},
          {"prefill_tokens_per_second", g.prefill_tokens_per_second},
          {"decode_tokens_per_second", g.decode_tokens_per_second},
          {"peak_rss_bytes", rss},
          {"model",
           {{"architecture", engine.summary().architecture},
            {"weight_format", engine.summary().weight_format},
            {"parameters", engine.summary().parameters}}}};
}

Result<int> run_generate(const GenerateFlags& f) {
  auto fs = make_real_file_system();
  if (f.has_system && !f.system_file.empty())
    return make_error(Errc::kInvalidInput, "--system", "give --system or --system-file, not both");
  if (f.has_prompt == !f.prompt_file.empty())
    return make_error(Errc::kInvalidInput, "--prompt", "give exactly one of --prompt and --prompt-file");
  if (f.max_tokens < 1) return make_error(Errc::kInvalidInput, "--max-tokens", "must be at least 1");
  if (f.threads < 0) return make_error(Errc::kInvalidInput, "--threads", "must not be negative");
  const fs::path model = fs::absolute(f.model);
  // A model directory, or a GGUF file (inference/gguf_model.h).
  if (!fs::is_directory(model) && !(fs::is_regular_file(model) && model.extension() == ".gguf"))
    return make_error(Errc::kInvalidInput, f.model, "no such model directory or .gguf file");

  std::string prompt = f.prompt, system = f.system;
  if (!f.prompt_file.empty()) {
    MB_ASSIGN(prompt, read_text(*fs, f.prompt_file, "prompt file"));
  }
  if (!f.system_file.empty()) {
    MB_ASSIGN(system, read_text(*fs, f.system_file, "system file"));
  }
  MB_ASSIGN(nlohmann::ordered_json tools, read_tools(*fs, f.tools_file));

  inference::LoadOptions lo;
  for (const std::string& a : f.adapters) {
    if (!a.empty()) lo.adapters.push_back(fs::absolute(a));  // "" = no adapter (an unset {adapter})
  }
  lo.threads = f.threads;
  MB_ASSIGN(std::unique_ptr<inference::Engine> engine, inference::Engine::load(*fs, model, lo));

  std::vector<inference::ChatMessage> messages;
  if (!system.empty()) messages.push_back({"system", system});
  messages.push_back({"user", prompt});
  inference::GenerateOptions go;
  go.max_tokens = f.max_tokens;
  if (!f.json) {
    go.on_text = [](std::string_view piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    };
  }
  auto generation = engine->generate(messages, tools, go);
  if (!generation.ok()) {
    Error e = generation.error();
    // The engine does not know where the prompt came from.
    if (e.where.empty()) e.where = f.prompt_file.empty() ? "--prompt" : f.prompt_file;
    return e;
  }
  const uint64_t rss = peak_rss_bytes();
  if (f.json) {
    std::string out = figures_json(*engine, *generation, rss).dump(2) + "\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
  } else {
    // A terminal gets a final newline; a pipe gets the completion verbatim.
    if (isatty(fileno(stdout))) std::fputc('\n', stdout);
    std::fflush(stdout);
    print_figures(*engine, *generation, rss);
  }
  return 0;
}

}  // namespace

int generate_command(const std::vector<std::string>& args) {
  CLI::App app("Generate a completion with the built-in CPU engine (greedy decoding).", "generate");
  GenerateFlags f;
  app.add_option(
         "--model", f.model,
         "model directory (config.json, tokenizer.json, *.safetensors), .gguf file, or directory holding one .gguf")
      ->required();
  app.add_option("--adapter", f.adapters, "LoRA adapter directory applied at run time (repeatable; \"\" = none)");
  auto* system = app.add_option("--system", f.system, "system message (default: the model template's own)");
  app.add_option("--system-file", f.system_file, "read the system message from a file (empty file = default)");
  auto* prompt = app.add_option("--prompt", f.prompt, "the user message");
  app.add_option("--prompt-file", f.prompt_file, "read the user message from a file");
  app.add_option("--tools-file", f.tools_file, "JSON array of OpenAI-style tools to offer the model");
  app.add_option("--max-tokens", f.max_tokens, "stop after this many tokens (default 256)");
  app.add_option("--threads", f.threads, "worker threads (default: all cores)");
  app.add_flag("--json", f.json, "print one JSON object (text and figures) instead of streaming");
  if (int rc = parse_args(app, args); rc >= 0) return rc;
  f.has_system = system->count() > 0;
  f.has_prompt = prompt->count() > 0;
  auto rc = run_generate(f);
  if (!rc.ok()) return report_error(rc.error());
  return *rc;
}

}  // namespace mb::cli
