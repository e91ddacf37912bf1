// format: gguf / hf on examples/tiny: what build/TARGET holds, the GGUF
// export's delta retention, the gate on the GGUF bytes, and bad input found
// before anything runs (exit 2, nothing cached).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/e2e_support.h"

namespace mb::e2e {
namespace {

class ExportCliTest : public ::testing::Test {
 protected:
  void SetUp() override { copy_tiny_example(dir()); }
  fs::path dir() const { return m_tmp.path(); }
  size_t cached_entries() const {
    size_t n = 0;
    const fs::path ac = dir() / ".modelbuild" / "ac";
    if (!fs::exists(ac)) return 0;
    for (auto it = fs::recursive_directory_iterator(ac); it != fs::recursive_directory_iterator(); ++it)
      n += it->is_regular_file();
    return n;
  }
  std::vector<std::string> visible_files(const fs::path& d) const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(d))
      if (e.path().filename().string()[0] != '.') out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  void rewrite_base_file(const std::string& name, const std::string& text) {
    const fs::path p = dir() / "models" / "base-4bit" / name;
    fs::remove(p);
    write_file(p, text);
  }
  void expect_bad_input(const std::vector<std::string>& args, const std::string& needle) {
    CliRun r = modelbuild(dir(), args);
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_NE(r.output.find(needle), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("built in"), std::string::npos) << "a step ran:\n" << r.output;
    EXPECT_EQ(cached_entries(), 0u) << r.output;
  }
  TempDir m_tmp{"export-cli-test"};
  TempDir m_fresh{"export-cli-fresh"};
};

TEST_F(ExportCliTest, GgufTargetsHoldOneFileReportRetentionAndGateTheirBytes) {
  CliRun r = modelbuild(dir(), {"gguf_f16", "gguf_q8_0", "gguf_q4_k_m"});
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* t : {"gguf_f16", "gguf_q8_0", "gguf_q4_k_m"}) {
    EXPECT_EQ(visible_files(dir() / "build" / t), std::vector<std::string>{"model.gguf"}) << t;
    const std::string bytes = read_file(dir() / "build" / t / "model.gguf");
    ASSERT_GT(bytes.size(), 1000u);
    EXPECT_EQ(bytes.substr(0, 4), "GGUF") << t;
  }
  // Each export fuses in its own streaming pass: no float model is built.
  EXPECT_EQ(r.output.find("[fuse"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[export gguf_q8_0] started"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("gguf_q8_0: built -> build/gguf_q8_0 (hardlink), gate passed"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("gguf_q4_k_m: built -> build/gguf_q4_k_m (hardlink), gate passed"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("GGUF Q8_0 export kept"), std::string::npos) << r.output;
  const auto lock = nlohmann::json::parse(read_file(dir() / "modelbuild.lock"));
  EXPECT_EQ(lock["targets"]["gguf_q8_0"]["gate"]["passed"], true);
  EXPECT_TRUE(lock["targets"]["gguf_q8_0"]["outputs"].contains("model.gguf"));
  // A retention threshold on the GGUF export reads its report: Q4_K_M keeps
  // far less of the delta than Q8_0 on this adapter.
  write_file(dir() / "modelbuild.yaml", read_file(dir() / "modelbuild.yaml") + R"(  gguf_q4_strict:
    base: base_4bit
    adapters: [tools_lora]
    dtype: float16
    format: gguf
    gguf_type: Q4_K_M
    min_delta_retention: 0.8
  gguf_q8_lenient:
    base: base_4bit
    adapters: [tools_lora]
    dtype: float16
    format: gguf
    gguf_type: Q8_0
    min_delta_retention: 0.8
    gate: null
)");
  CliRun strict = modelbuild(dir(), {"gguf_q4_strict"});
  EXPECT_NE(strict.code, 0) << strict.output;
  EXPECT_NE(strict.output.find("delta retention"), std::string::npos) << strict.output;
  EXPECT_EQ(strict.output.find("[gate gguf_q4_strict] started"), std::string::npos) << "no gate after a failed check";
  CliRun lenient = modelbuild(dir(), {"gguf_q8_lenient"});
  EXPECT_EQ(lenient.code, 0) << lenient.output;
  EXPECT_EQ(lenient.output.find("[export"), std::string::npos) << "the Q8_0 export is cached: " << lenient.output;
}

// `diff` reads a GGUF target under Hugging Face names: the F16 export holds
// exactly the float16 fused model's values; Q8_0 changes every matrix but
// no norm, by a small relative error; two GGUF files diff by name too.
TEST_F(ExportCliTest, DiffComparesAGgufExportWithTheModelItCameFrom) {
  CliRun b = modelbuild(dir(), {"fused_f16", "gguf_f16", "gguf_q8_0"});
  ASSERT_EQ(b.code, 0) << b.output;
  CliRun same = modelbuild(dir(), {"diff", "build/fused_f16", "build/gguf_f16"});
  EXPECT_EQ(same.code, 0) << same.output;
  EXPECT_NE(same.out.find(" 0 different, 0 only in a, 0 only in b, 0 shape mismatches"), std::string::npos) << same.out;
  CliRun q = modelbuild(dir(), {"diff", "--json", "build/fused_f16", "build/gguf_q8_0/model.gguf"});
  EXPECT_EQ(q.code, 1) << q.output;
  const auto doc = nlohmann::json::parse(q.out);
  EXPECT_EQ(doc["only_in_a"], 0) << q.out;
  EXPECT_EQ(doc["only_in_b"], 0) << q.out;
  int matrices = 0;
  for (const auto& t : doc["tensors"]) {
    const std::string name = t["name"];
    ASSERT_EQ(name.find("blk."), std::string::npos) << "a GGUF name was not mapped back: " << name;
    if (name.ends_with("norm.weight")) {
      EXPECT_EQ(t["kind"], "identical") << name;
      continue;
    }
    if (t["stored_b"] != "q8_0") continue;
    ++matrices;
    EXPECT_EQ(t["kind"], "different") << name;
    EXPECT_EQ(t["stored_a"], "F16") << name;
    EXPECT_GT(t["rel"].get<double>(), 0) << name;
    EXPECT_LT(t["rel"].get<double>(), 0.01) << name;  // Q8_0: 8 bits per value, one scale per 32
  }
  EXPECT_GE(matrices, 7) << q.out;  // q, k, v, o, gate, up, down of each layer
  CliRun gg = modelbuild(dir(), {"diff", "build/gguf_f16", "build/gguf_q8_0"});
  EXPECT_EQ(gg.code, 1) << gg.output;
  EXPECT_NE(gg.out.find("~ model.layers.0.mlp.down_proj.weight  F16 vs q8_0"), std::string::npos) << gg.out;
  CliRun self = modelbuild(dir(), {"diff", "build/gguf_q8_0", "build/gguf_q8_0"});
  EXPECT_EQ(self.code, 0) << self.output;
  // A truncated file is bad input naming it.
  const fs::path cut = dir() / "cut.gguf";
  write_file(cut, read_file(dir() / "build/gguf_q8_0/model.gguf").substr(0, 5000));
  CliRun bad = modelbuild(dir(), {"diff", "build/fused_f16", cut.string()});
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_NE(bad.output.find("cut.gguf"), std::string::npos) << bad.output;
}

TEST_F(ExportCliTest, HfTargetIsTheTransformersLayoutAndTheEngineRunsIt) {
  CliRun r = modelbuild(dir(), {"hf_f16"});
  ASSERT_EQ(r.code, 0) << r.output;
  const fs::path out = dir() / "build/hf_f16";
  EXPECT_EQ(visible_files(out), (std::vector<std::string>{"config.json", "generation_config.json", "model.safetensors",
                                                          "tokenizer.json", "tokenizer_config.json"}));
  const auto config = nlohmann::json::parse(read_file(out / "config.json"));
  EXPECT_EQ(config["torch_dtype"], "float16");
  EXPECT_FALSE(config.contains("quantization"));
  EXPECT_FALSE(config.contains("quantization_config"));
  const std::string st = read_file(out / "model.safetensors");
  EXPECT_NE(st.find("{\"__metadata__\":{\"format\":\"pt\"}"), std::string::npos);
  // The native engine generates from it as from the MLX float model.
  CliRun mlx = modelbuild(dir(), {"fused_f16"});
  ASSERT_EQ(mlx.code, 0) << mlx.output;
  const std::vector<std::string> gen = {"generate", "--prompt", "Hello", "--max-tokens", "8"};
  std::vector<std::string> a = gen, b = gen;
  a.insert(a.begin() + 1, {"--model", (dir() / "build/hf_f16").string()});
  b.insert(b.begin() + 1, {"--model", (dir() / "build/fused_f16").string()});
  CliRun ga = modelbuild(dir(), a), gb = modelbuild(dir(), b);
  ASSERT_EQ(ga.code, 0) << ga.output;
  ASSERT_EQ(gb.code, 0) << gb.output;
  EXPECT_EQ(ga.out, gb.out);
}

TEST_F(ExportCliTest, AnUnknownGgufTypeIsARecipeError) {
  write_file(dir() / "modelbuild.yaml", read_file(dir() / "modelbuild.yaml") + R"(  bad:
    base: base_4bit
    format: gguf
    gguf_type: Q4_K_S
)");
  expect_bad_input({"bad"}, "modelbuild.yaml:");
  CliRun r = modelbuild(dir(), {"bad"});
  EXPECT_NE(r.output.find("unknown GGUF type 'Q4_K_S'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("did you mean 'Q4_K_M'"), std::string::npos) << r.output;
}

TEST_F(ExportCliTest, AnArchitectureWithoutAGgufMappingStopsBeforeTheFuse) {
  std::string config = read_file(dir() / "models/base-4bit/config.json");
  const size_t at = config.find("\"qwen2\"");
  ASSERT_NE(at, std::string::npos);
  config.replace(at, 7, "\"mamba\"");
  rewrite_base_file("config.json", config);
  expect_bad_input({"gguf_f16"}, "models/base-4bit/config.json");
  CliRun r = modelbuild(dir(), {"gguf_f16"});
  EXPECT_NE(r.output.find("'mamba' has no GGUF mapping"), std::string::npos) << r.output;
  expect_bad_input({"hf_f16"}, "'mamba' has no Hugging Face export");
}

TEST_F(ExportCliTest, AMissingOrMalformedTokenizerFileStopsAGgufExport) {
  fs::remove(dir() / "models/base-4bit/tokenizer_config.json");
  expect_bad_input({"gguf_f16"}, "models/base-4bit/tokenizer_config.json");
  copy_tiny_example(m_fresh.path());
  fs::copy_file(m_fresh.path() / "models/base-4bit/tokenizer_config.json",
                dir() / "models/base-4bit/tokenizer_config.json");
  rewrite_base_file("tokenizer_config.json", "{\"chat_template\": ");
  expect_bad_input({"gguf_f16"}, "models/base-4bit/tokenizer_config.json");
  fs::remove(dir() / "models/base-4bit/tokenizer_config.json");
  fs::copy_file(m_fresh.path() / "models/base-4bit/tokenizer_config.json",
                dir() / "models/base-4bit/tokenizer_config.json");
  rewrite_base_file("tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": ");
  expect_bad_input({"gguf_f16"}, "models/base-4bit/tokenizer.json");
  fs::remove(dir() / "models/base-4bit/tokenizer.json");
  expect_bad_input({"gguf_f16"}, "models/base-4bit/tokenizer.json");
}

}  // namespace
}  // namespace mb::e2e
