// `modelbuild generate` end to end: its streamed text is the library's
// greedy completion, --json carries the figures, bad input exits 2 naming
// the file, and the gate's command runner driving this CLI reaches the same
// verdicts as the in-process native runner on examples/tiny.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/reporter.h"
#include "gate/gate.h"
#include "gate/runner.h"
#include "inference/engine.h"
#include "tests/e2e_support.h"

namespace mb::e2e {
namespace {

fs::path golden(const std::string& rel) { return source_dir() / "tests" / "golden" / rel; }

// What the library itself answers, for comparison with the CLI.
inference::Generation library_generate(const fs::path& model, std::vector<fs::path> adapters, const std::string& prompt,
                                       int max_tokens) {
  auto fs = make_real_file_system();
  inference::LoadOptions lo;
  lo.adapters = std::move(adapters);
  lo.threads = 1;
  auto engine = inference::Engine::load(*fs, model, lo);
  EXPECT_TRUE(engine.ok()) << engine.error().to_string();
  if (!engine.ok()) return {};
  inference::GenerateOptions go;
  go.max_tokens = max_tokens;
  auto g = (*engine)->generate({{"user", prompt}}, nullptr, go);
  EXPECT_TRUE(g.ok()) << g.error().to_string();
  return g.ok() ? *g : inference::Generation{};
}

// A copy of the golden f32 model that a test may break.
fs::path copy_model(const TempDir& tmp) {
  fs::path dir = tmp.path() / "model";
  fs::copy(golden("models/qwen2-f32"), dir, fs::copy_options::recursive);
  return dir;
}

TEST(GenerateCli, StreamsTheLibrarysGreedyCompletion) {
  TempDir tmp;
  const fs::path model = golden("models/qwen2-f32"), adapter = golden("adapters/qwen2-lora-mlx");
  auto want = library_generate(model, {adapter}, "Say something", 12);
  ASSERT_GT(want.completion_tokens, 0);
  auto run = modelbuild(tmp.path(), {"generate", "--model", model.string(), "--adapter", adapter.string(), "--prompt",
                                     "Say something", "--max-tokens", "12", "--threads", "2"});
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_EQ(run.out, want.text);
  // Figures on stderr only.
  for (const char* figure : {"load ", "first token ", "prefill ", "decode ", "peak memory "})
    EXPECT_NE(run.output.find(figure), std::string::npos) << figure << " missing in: " << run.output;

  // The same from files, and as JSON.
  write_file(tmp.path() / "prompt.txt", "Say something");
  auto json = modelbuild(tmp.path(), {"generate", "--model", model.string(), "--adapter", adapter.string(),
                                      "--prompt-file", "prompt.txt", "--max-tokens", "12", "--json"});
  ASSERT_EQ(json.code, 0) << json.output;
  auto j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["text"], want.text);
  EXPECT_EQ(j["completion_tokens"], want.completion_tokens);
  EXPECT_EQ(j["prompt_tokens"], want.prompt_tokens);
  EXPECT_GT(j["peak_rss_bytes"].get<uint64_t>(), 0u);
  EXPECT_GT(j["decode_tokens_per_second"].get<double>(), 0);
  EXPECT_EQ(j["model"]["architecture"], "qwen2");
}

TEST(GenerateCli, QuantizedModelWithoutAdapterMatchesTheLibrary) {
  TempDir tmp;
  const fs::path model = golden("models/qwen2-q4");
  auto want = library_generate(model, {}, "Hello", 8);
  // An empty --adapter (an unset {adapter} placeholder) means no adapter.
  auto run = modelbuild(
      tmp.path(), {"generate", "--model", model.string(), "--adapter", "", "--prompt", "Hello", "--max-tokens", "8"});
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_EQ(run.out, want.text);
}

TEST(GenerateCli, BadInputExitsTwoNamingTheFile) {
  TempDir tmp;
  const std::string model = golden("models/qwen2-f32").string();
  auto expect_bad = [&](std::vector<std::string> args, const std::string& needle) {
    args.insert(args.begin(), "generate");
    auto run = modelbuild(tmp.path(), args);
    EXPECT_EQ(run.code, 2) << run.output;
    EXPECT_NE(run.output.find(needle), std::string::npos) << "expected '" << needle << "' in: " << run.output;
    EXPECT_TRUE(run.out.empty()) << run.out;
  };
  expect_bad({"--model", (tmp.path() / "absent").string(), "--prompt", "hi"}, "absent: no such model directory");
  expect_bad({"--model", model, "--prompt-file", "missing.txt"}, "missing.txt: cannot read the prompt file");
  expect_bad({"--model", model}, "exactly one of --prompt and --prompt-file");
  expect_bad({"--model", model, "--adapter", golden("adapters/other-model-lora-mlx").string(), "--prompt", "hi"},
             "made for a different model");
  write_file(tmp.path() / "tools.json", "[{\"type\": ");
  expect_bad({"--model", model, "--prompt", "hi", "--tools-file", "tools.json"},
             "tools.json: the tools file is not valid JSON");

  std::string long_prompt;
  for (int i = 0; i < 600; ++i) long_prompt += "hello ";
  write_file(tmp.path() / "long.txt", long_prompt);
  expect_bad({"--model", model, "--prompt-file", "long.txt"}, "long.txt: prompt of");

  fs::path broken = copy_model(tmp);
  write_file(broken / "tokenizer.json", "{\"model\": ");
  expect_bad({"--model", broken.string(), "--prompt", "hi"}, "tokenizer.json");

  TempDir tmp2;
  fs::path mamba = copy_model(tmp2);
  auto config = nlohmann::json::parse(read_file(mamba / "config.json"));
  config["model_type"] = "mamba";
  config["architectures"] = {"MambaForCausalLM"};
  write_file(mamba / "config.json", config.dump());
  expect_bad({"--model", mamba.string(), "--prompt", "hi"},
             "config.json: unsupported architecture \"MambaForCausalLM\"");
}

// Issue 5's test point: the command runner on the project's own CLI gives
// the native runner's verdicts, case by case (examples/tiny, adapter
// configuration: the 4-bit base plus the LoRA applied at run time).
TEST(GenerateCli, CommandRunnerOnGenerateMatchesTheNativeRunner) {
  const fs::path tiny = source_dir() / "examples" / "tiny";
  auto fs = make_real_file_system();
  auto suite = gate::load_suite(*fs, tiny / "suite.yaml");
  ASSERT_TRUE(suite.ok()) << suite.error().to_string();
  gate::RunnerTarget target{tiny / "models" / "base-4bit", {tiny / "adapters" / "tools-lora"}, 1};
  NullReporter quiet;
  const nlohmann::json native_config = {{"type", "native"}};
  const nlohmann::json command_config = {
      {"type", "command"},
      {"command", binary().string() +
                      " generate --model {model} --adapter {adapter} --system-file {system_file} --prompt-file "
                      "{prompt_file} --tools-file {tools_file} --max-tokens {max_tokens} --threads 1"}};
  auto native = gate::run_gate(*fs, *suite, target, native_config, quiet);
  ASSERT_TRUE(native.ok()) << native.error().to_string();
  auto command = gate::run_gate(*fs, *suite, target, command_config, quiet);
  ASSERT_TRUE(command.ok()) << command.error().to_string();
  ASSERT_EQ(native->cases.size(), suite->cases.size());
  ASSERT_EQ(command->cases.size(), native->cases.size());
  for (size_t i = 0; i < native->cases.size(); ++i) {
    SCOPED_TRACE(native->cases[i].prompt);
    EXPECT_EQ(command->cases[i].passed, native->cases[i].passed);
    EXPECT_EQ(command->cases[i].called_tool, native->cases[i].called_tool);
    EXPECT_EQ(command->cases[i].tools_called, native->cases[i].tools_called);
    EXPECT_EQ(command->cases[i].response, native->cases[i].response);
  }
  // The adapter configuration passes the whole suite (examples/tiny/README).
  EXPECT_EQ(native->accuracy(), 1.0);
}

}  // namespace
}  // namespace mb::e2e
