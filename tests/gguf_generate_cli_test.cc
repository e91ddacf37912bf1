// `modelbuild generate --model x.gguf` and the gate's native runner on a
// GGUF target's directory (one model.gguf): the same greedy completions as
// the model the file was written from, every block type runs, and a bad
// file exits 2 naming it. The files come from inference/gguf_test_support.h.
#include <gtest/gtest.h>

#include "base/reporter.h"
#include "gate/gate.h"
#include "gate/runner.h"
#include "inference/engine.h"
#include "inference/gguf_test_support.h"
#include "inference/golden_test_support.h"
#include "tests/e2e_support.h"

namespace mb::e2e {
namespace {

const fs::path kTinyModel = source_dir() / "examples" / "tiny" / "models" / "base-4bit";

inference::Generation library_generate(const fs::path& model, const std::string& prompt, int max_tokens) {
  auto fs = make_real_file_system();
  auto engine = inference::Engine::load(*fs, model, inference::LoadOptions{{}, 1});
  EXPECT_TRUE(engine.ok()) << engine.error().to_string();
  if (!engine.ok()) return {};
  inference::GenerateOptions go;
  go.max_tokens = max_tokens;
  auto g = (*engine)->generate({{"user", prompt}}, nullptr, go);
  EXPECT_TRUE(g.ok()) << g.error().to_string();
  return g.ok() ? *g : inference::Generation{};
}

// A GGUF target's directory: `dir`/model.gguf of the tiny example's base
// model (its MLX 4-bit weights as dequantized values), stored as `type`.
fs::path tiny_gguf(const fs::path& dir, GgmlType type) {
  auto m = inference::load_test_model(kTinyModel, {});
  EXPECT_TRUE(m.ok()) << m.error().to_string();
  fs::create_directories(dir);
  const fs::path file = dir / "model.gguf";
  Status s = inference::test::write_test_gguf(file, m->config, inference::test::float_model(*m), kTinyModel, type);
  EXPECT_TRUE(s.ok()) << s.error().to_string();
  return file;
}

TEST(GgufGenerateCli, F32AndF16FilesGiveTheMlxModelsCompletion) {
  TempDir tmp;
  for (const char* prompt : {"Hello", "What is the weather in Paris?"}) {
    const auto want = library_generate(kTinyModel, prompt, 16);
    ASSERT_GT(want.completion_tokens, 0);
    for (GgmlType t : {GgmlType::kF32, GgmlType::kF16}) {
      SCOPED_TRACE(ggml_type_name(t));
      const fs::path dir = tmp.path() / ggml_type_name(t);
      const fs::path file = tiny_gguf(dir, t);
      for (const fs::path& model : {file, dir}) {
        auto run = modelbuild(
            tmp.path(), {"generate", "--model", model.string(), "--prompt", prompt, "--max-tokens", "16", "--json"});
        ASSERT_EQ(run.code, 0) << run.output;
        auto j = nlohmann::json::parse(run.out);
        EXPECT_EQ(j["text"], want.text) << prompt;
        EXPECT_EQ(j["completion_tokens"], want.completion_tokens);
        EXPECT_EQ(j["prompt_tokens"], want.prompt_tokens);
      }
    }
  }
}

TEST(GgufGenerateCli, EveryQuantizedTypeRuns) {
  TempDir tmp;
  // The tiny model's rows (128, 384) take the 32-value types; the K types
  // need 256-wide rows, so they run on a random model that has them.
  inference::ModelConfig wide = inference::load_test_model(kTinyModel, {}).value().config;
  wide.hidden_size = 256;
  wide.intermediate_size = 512;
  wide.head_dim = 64;
  wide.num_layers = 1;
  const auto random = inference::test::random_model(wide, 3);
  for (GgmlType t : {GgmlType::kBF16, GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ5_0, GgmlType::kQ5_1,
                     GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    SCOPED_TRACE(ggml_type_name(t));
    fs::path file;
    if (ggml_block_size(t) == 256) {
      file = tmp.path() / fmt::format("{}.gguf", ggml_type_name(t));
      ASSERT_TRUE(inference::test::write_test_gguf(file, wide, random, kTinyModel, t).ok());
    } else {
      file = tiny_gguf(tmp.path() / ggml_type_name(t), t);
    }
    auto run = modelbuild(tmp.path(),
                          {"generate", "--model", file.string(), "--prompt", "Hello", "--max-tokens", "8", "--json"});
    ASSERT_EQ(run.code, 0) << run.output;
    auto j = nlohmann::json::parse(run.out);
    EXPECT_GT(j["completion_tokens"].get<int>(), 0);
    EXPECT_NE(j["model"]["weight_format"].get<std::string>().find(ggml_type_name(t)), std::string::npos)
        << j["model"].dump();
  }
}

TEST(GgufGenerateCli, BadFileExitsTwoNamingIt) {
  TempDir tmp;
  const fs::path file = tiny_gguf(tmp.path() / "good", GgmlType::kQ8_0);
  const std::string bytes = read_file(file);
  write_file(tmp.path() / "cut.gguf", bytes.substr(0, bytes.size() / 2));
  auto run = modelbuild(tmp.path(), {"generate", "--model", (tmp.path() / "cut.gguf").string(), "--prompt", "hi"});
  EXPECT_EQ(run.code, 2) << run.output;
  EXPECT_NE(run.output.find("cut.gguf"), std::string::npos) << run.output;
  EXPECT_TRUE(run.out.empty()) << run.out;
  write_file(tmp.path() / "two" / "a.gguf", bytes);
  write_file(tmp.path() / "two" / "b.gguf", bytes);
  run = modelbuild(tmp.path(), {"generate", "--model", (tmp.path() / "two").string(), "--prompt", "hi"});
  EXPECT_EQ(run.code, 2) << run.output;
  EXPECT_NE(run.output.find("holds 2 .gguf files"), std::string::npos) << run.output;
}

// The gate's native runner takes a GGUF target's directory as it is: the
// F32 file of the tiny base model, with the tools adapter applied at run
// time, reaches the verdicts of the MLX model it was written from.
TEST(GgufGenerateCli, NativeGateRunnerOnAGgufTarget) {
  TempDir tmp;
  const fs::path tiny = source_dir() / "examples" / "tiny";
  const fs::path dir = tmp.path() / "gguf_f32";
  tiny_gguf(dir, GgmlType::kF32);
  auto fs = make_real_file_system();
  auto suite = gate::load_suite(*fs, tiny / "suite.yaml");
  ASSERT_TRUE(suite.ok()) << suite.error().to_string();
  NullReporter quiet;
  const nlohmann::json native = {{"type", "native"}};
  auto want = gate::run_gate(*fs, *suite, {kTinyModel, {tiny / "adapters" / "tools-lora"}, 1}, native, quiet);
  ASSERT_TRUE(want.ok()) << want.error().to_string();
  auto got = gate::run_gate(*fs, *suite, {dir, {tiny / "adapters" / "tools-lora"}, 1}, native, quiet);
  ASSERT_TRUE(got.ok()) << got.error().to_string();
  ASSERT_EQ(got->cases.size(), want->cases.size());
  for (size_t i = 0; i < got->cases.size(); ++i) {
    SCOPED_TRACE(want->cases[i].prompt);
    EXPECT_EQ(got->cases[i].passed, want->cases[i].passed);
    EXPECT_EQ(got->cases[i].response, want->cases[i].response);
  }
  EXPECT_EQ(got->accuracy(), want->accuracy());
}

}  // namespace
}  // namespace mb::e2e
