// The engine on GGUF files: the same logits and greedy tokens as the
// safetensors model the file was written from, the block types bit-identical
// to their dequantized float twins, the llama q/k rows put back, the
// tokenizer from metadata alone, and errors naming file and key or tensor.
#include "inference/gguf_model.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "base/temp_dir.h"
#include "inference/engine.h"
#include "inference/gguf_test_support.h"
#include "inference/golden_test_support.h"
#include "tensors/gguf_export.h"

namespace mb::inference {
namespace {

fs::path golden_model(const char* name) { return golden_root() / "models" / name; }

std::unique_ptr<Engine> load_engine(const fs::path& path) {
  auto fs = make_real_file_system();
  LoadOptions o;
  o.threads = 2;
  auto e = Engine::load(*fs, path, o);
  EXPECT_TRUE(e.ok()) << e.error().to_string();
  return e.ok() ? std::move(e).value() : nullptr;
}

Result<std::unique_ptr<Engine>> try_load(const fs::path& path) {
  auto fs = make_real_file_system();
  return Engine::load(*fs, path, LoadOptions{{}, 1});
}

Generation greedy(Engine& e, const std::string& prompt, int max_tokens = 12) {
  GenerateOptions go;
  go.max_tokens = max_tokens;
  auto g = e.generate({{"user", prompt}}, nullptr, go);
  EXPECT_TRUE(g.ok()) << g.error().to_string();
  return g.ok() ? *g : Generation{};
}

std::vector<int32_t> prompt_ids(Engine& e) { return e.tokenize("<|im_start|>user\nHello there<|im_end|>\n").value(); }

void expect_same_bits(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0) << what;
}

test::FloatModel golden_values(const fs::path& dir) {
  auto m = load_test_model(dir, {});
  EXPECT_TRUE(m.ok()) << m.error().to_string();
  return test::float_model(*m);
}

ModelConfig golden_config(const fs::path& dir) { return load_test_model(dir, {}).value().config; }

TEST(GgufEngine, F32FileGivesTheFloatModelsLogitsAndTokens) {
  TempDir tmp;
  const fs::path src = golden_model("qwen2-f32"), file = tmp.path() / "model.gguf";
  ASSERT_TRUE(test::write_test_gguf(file, golden_config(src), golden_values(src), src, GgmlType::kF32).ok());
  auto want = load_engine(src);
  // The file itself and the directory holding it (what a GGUF target is).
  for (const fs::path& p : {file, tmp.path()}) {
    auto got = load_engine(p);
    ASSERT_TRUE(got && want);
    EXPECT_EQ(got->summary().architecture, "qwen2");
    EXPECT_EQ(got->summary().weight_format, "f32");
    const auto ids = prompt_ids(*want);
    EXPECT_EQ(got->tokenize("<|im_start|>user\nHello there<|im_end|>\n").value(), ids);
    expect_same_bits(got->all_logits(ids).value(), want->all_logits(ids).value(), p.string());
    const Generation a = greedy(*got, "Say something"), b = greedy(*want, "Say something");
    EXPECT_GT(a.completion_tokens, 0);
    EXPECT_EQ(a.tokens, b.tokens);
    EXPECT_EQ(a.text, b.text);
  }
}

TEST(GgufEngine, F16FileKeepsTheFloatModelsGreedyTokens) {
  TempDir tmp;
  const fs::path src = golden_model("qwen2-f32");
  const fs::path f16 = tmp.path() / "f16.gguf", twin = tmp.path() / "twin.gguf";
  const ModelConfig c = golden_config(src);
  const test::FloatModel v = golden_values(src);
  ASSERT_TRUE(test::write_test_gguf(f16, c, v, src, GgmlType::kF16).ok());
  ASSERT_TRUE(test::write_test_gguf(twin, c, v, src, GgmlType::kF16, /*dequantized=*/true).ok());
  auto got = load_engine(f16), float_twin = load_engine(twin), want = load_engine(src);
  ASSERT_TRUE(got && float_twin && want);
  EXPECT_EQ(got->summary().weight_format, "f16");
  const auto ids = prompt_ids(*want);
  expect_same_bits(got->all_logits(ids).value(), float_twin->all_logits(ids).value(), "f16 vs its f32 twin");
  for (const char* prompt : {"Say something", "Hello", "What is the weather?"})
    EXPECT_EQ(greedy(*got, prompt).tokens, greedy(*want, prompt).tokens) << prompt;
}

// A random qwen2 model wide enough (256) for the K super-blocks.
ModelConfig wide_config() {
  ModelConfig c = golden_config(golden_model("qwen2-f32"));
  c.hidden_size = 256;
  c.intermediate_size = 512;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 64;
  c.num_layers = 2;
  return c;
}

TEST(GgufEngine, EveryBlockTypeEqualsItsDequantizedFloatTwin) {
  TempDir tmp;
  const fs::path tok = golden_model("qwen2-f32");
  const ModelConfig c = wide_config();
  const test::FloatModel v = test::random_model(c, 7);
  for (GgmlType t : {GgmlType::kBF16, GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ5_0, GgmlType::kQ5_1,
                     GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    SCOPED_TRACE(ggml_type_name(t));
    const fs::path q = tmp.path() / fmt::format("{}.gguf", ggml_type_name(t));
    const fs::path twin = tmp.path() / fmt::format("{}-twin.gguf", ggml_type_name(t));
    ASSERT_TRUE(test::write_test_gguf(q, c, v, tok, t).ok());
    ASSERT_TRUE(test::write_test_gguf(twin, c, v, tok, t, /*dequantized=*/true).ok());
    auto got = load_engine(q), float_twin = load_engine(twin);
    ASSERT_TRUE(got && float_twin);
    EXPECT_EQ(got->summary().weight_format.substr(0, std::strlen(ggml_type_name(t))), ggml_type_name(t));
    const auto ids = prompt_ids(*got);
    expect_same_bits(got->all_logits(ids).value(), float_twin->all_logits(ids).value(), ggml_type_name(t));
    const Generation g = greedy(*got, "Hello", 6), w = greedy(*float_twin, "Hello", 6);
    EXPECT_EQ(g.completion_tokens, 6);
    EXPECT_EQ(g.tokens, w.tokens);
  }
}

// llama's q/k rows are stored permuted; the loader puts them back.
TEST(GgufEngine, LlamaQkRowsAreUnpermuted) {
  TempDir tmp;
  const fs::path src = golden_model("llama-bf16"), file = tmp.path() / "llama.gguf";
  const ModelConfig c = golden_config(src);
  const test::FloatModel v = golden_values(src);
  ASSERT_TRUE(test::write_test_gguf(file, c, v, src, GgmlType::kF32).ok());
  auto opened = GgufFile::open(file);
  ASSERT_TRUE(opened.ok()) << opened.error().to_string();
  auto m = load_gguf_model(std::make_shared<const GgufFile>(std::move(opened).value()));
  ASSERT_TRUE(m.ok()) << m.error().to_string();
  EXPECT_EQ(m->config.arch, Architecture::kLlama);
  EXPECT_FALSE(m->config.tie_word_embeddings);
  const test::FloatModel back = test::float_model(*m);
  for (const char* name : {"model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight",
                           "model.layers.0.self_attn.v_proj.weight", "lm_head.weight"})
    EXPECT_EQ(back.at(name).values, v.at(name).values) << name;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void write_bytes(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

TEST(GgufEngine, BadFilesNameTheFileAndTheKeyOrTensor) {
  TempDir tmp;
  const fs::path src = golden_model("qwen2-f32"), good = tmp.path() / "good.gguf";
  const ModelConfig c = golden_config(src);
  const test::FloatModel v = golden_values(src);
  ASSERT_TRUE(test::write_test_gguf(good, c, v, src, GgmlType::kQ8_0).ok());
  const std::string bytes = read_bytes(good);

  const fs::path cut = tmp.path() / "cut.gguf";
  for (size_t n : {size_t{0}, size_t{10}, bytes.size() / 3, bytes.size() - 1}) {
    write_bytes(cut, bytes.substr(0, n));
    auto e = try_load(cut);
    ASSERT_FALSE(e.ok()) << n;
    if (getenv("MB_PRINT_ERRORS")) printf("%s\n", e.error().to_string().c_str());
    EXPECT_NE(e.error().to_string().find("cut.gguf"), std::string::npos) << e.error().to_string();
  }

  test::FloatModel wrong = v;
  wrong.erase("model.layers.1.mlp.up_proj.weight");
  const fs::path missing = tmp.path() / "missing.gguf";
  ASSERT_TRUE(test::write_test_gguf(missing, c, wrong, src, GgmlType::kQ8_0).ok());
  auto e = try_load(missing);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().to_string().find("model.layers.1.mlp.up_proj.weight"), std::string::npos)
      << e.error().to_string();

  wrong = v;
  wrong["model.layers.0.mlp.down_proj.weight"].shape = {64, 32};  // [hidden, inter] is [32, 64]
  const fs::path shape = tmp.path() / "shape.gguf";
  ASSERT_TRUE(test::write_test_gguf(shape, c, wrong, src, GgmlType::kQ8_0).ok());
  e = try_load(shape);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().to_string().find("shape.gguf: blk.0.ffn_down.weight"), std::string::npos)
      << e.error().to_string();

  ModelConfig mamba = c;
  mamba.num_heads = 3;  // 32 is not a multiple of 3 and no key_length is wrong: head_dim 8 * 3 != 32 q rows
  const fs::path heads = tmp.path() / "heads.gguf";
  ASSERT_TRUE(test::write_test_gguf(heads, mamba, v, src, GgmlType::kQ8_0).ok());
  e = try_load(heads);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().to_string().find("heads.gguf"), std::string::npos) << e.error().to_string();
  if (getenv("MB_PRINT_ERRORS")) printf("%s\n", e.error().to_string().c_str());
}

// Rope scaling keys read as llama.cpp reads them (docs/formats/gguf.md): the
// type defaults to linear, the factor may be the older rope.scale_linear, a
// factor of 0 or none is no scaling, and other types are refused by key.
TEST(GgufEngine, RopeScalingKeysReadAsLlamaCppReadsThem) {
  TempDir tmp;
  const fs::path src = golden_model("qwen2-f32");
  const ModelConfig c = golden_config(src);
  const test::FloatModel v = golden_values(src);
  struct Case {
    std::string type;  // empty: no type key
    std::string factor_key;
    float factor;
    double want;  // 0: no scaling; < 0: an error naming the key
  };
  const std::string a = architecture_name(c.arch);
  for (const Case& k : std::vector<Case>{{"linear", "rope.scaling.factor", 4, 4},
                                         {"", "rope.scaling.factor", 4, 4},
                                         {"", "rope.scale_linear", 2, 2},
                                         {"none", "rope.scaling.factor", 4, 0},
                                         {"linear", "rope.scaling.factor", 0, 0},
                                         {"yarn", "rope.scaling.factor", 4, -1},
                                         {"", "rope.scaling.factor", -1, -1}}) {
    SCOPED_TRACE(k.type + " " + k.factor_key + " " + std::to_string(k.factor));
    const fs::path file = tmp.path() / "rope.gguf";
    ASSERT_TRUE(test::write_test_gguf(file, c, v, src, GgmlType::kF32, false, [&](GgufMetadata& md) {
                  if (!k.type.empty()) md.add_string(a + ".rope.scaling.type", k.type);
                  md.add_f32(a + "." + k.factor_key, k.factor);
                }).ok());
    auto f = GgufFile::open(file);
    ASSERT_TRUE(f.ok()) << f.error().to_string();
    auto got = gguf_model_config(*f);
    if (k.want < 0) {
      ASSERT_FALSE(got.ok());
      EXPECT_NE(got.error().to_string().find(a + ".rope.scaling."), std::string::npos) << got.error().to_string();
      continue;
    }
    ASSERT_TRUE(got.ok()) << got.error().to_string();
    EXPECT_EQ(got->rope.type, k.want == 0 ? RopeConfig::Type::kDefault : RopeConfig::Type::kLinear);
    if (k.want != 0) {
      EXPECT_EQ(got->rope.factor, k.want);
    }
  }
}

TEST(GgufEngine, ADirectoryWithSeveralGgufFilesIsAnError) {
  TempDir tmp;
  write_bytes(tmp.path() / "a.gguf", "x");
  write_bytes(tmp.path() / "b.gguf", "y");
  auto e = try_load(tmp.path());
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, Errc::kInvalidInput);
  EXPECT_NE(e.error().message.find("holds 2 .gguf files"), std::string::npos) << e.error().to_string();
}

}  // namespace
}  // namespace mb::inference

namespace mb::inference {
namespace {

// Files from the project's own exporter (tensors/gguf_export.h): a float
// model as F16 keeps its greedy tokens; llama with Llama 3 rope scaling
// (stored as rope_freqs.weight) stays close to the safetensors model.
TEST(GgufEngine, ExportedFilesRunLikeTheirSource) {
  TempDir tmp;
  for (const char* name : {"qwen2-f32", "llama-bf16", "qwen3-bf16"}) {
    SCOPED_TRACE(name);
    const fs::path src = golden_model(name), file = tmp.path() / fmt::format("{}.gguf", name);
    GgufExportOptions o;
    o.threads = 1;
    auto stats = export_gguf(src, file, o);
    ASSERT_TRUE(stats.ok()) << stats.error().to_string();
    auto got = load_engine(file), want = load_engine(src);
    ASSERT_TRUE(got && want);
    const auto ids = prompt_ids(*want);
    const auto a = got->logits(ids).value(), b = want->logits(ids).value();
    ASSERT_EQ(a.size(), b.size());
    float worst = 0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
    // F16 storage of bf16/f32 weights: a few f16 ulps per weight.
    EXPECT_LT(worst, 0.05f);
    EXPECT_EQ(greedy(*got, "Say something").tokens, greedy(*want, "Say something").tokens);
  }
}

}  // namespace
}  // namespace mb::inference
