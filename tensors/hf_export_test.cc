// The Hugging Face layout, field by field as docs/formats/hf-layout.md
// describes it, on a small MLX-quantized Qwen2-shaped model.
#include "tensors/hf_export.h"

#include <gtest/gtest.h>

#include "base/fs_test_support.h"
#include "base/reporter.h"
#include "tensors/fuse_test_support.h"
#include "tensors/quantize_model.h"
#include "tensors/safetensors.h"

namespace mb {
namespace {

using namespace fuse_test;  // NOLINT: test helpers

constexpr const char* kGeneration = "{\n  \"bos_token_id\": 1,\n  \"eos_token_id\": [2, 3]\n}\n";
constexpr const char* kTokenizerConfig = "{\"chat_template\": \"{{ messages }}\", \"eos_token\": \"<e>\"}";

class HfExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spec_ = tiny_qwen(DType::kBF16);
    spec_.quant = QuantParams{4, 32, QuantKernel::kGpu};
    spec_.config["_name_or_path"] = "somewhere/local";
    spec_.config["rope_theta"] = 1000000.0;
    spec_.config["rms_norm_eps"] = 1e-06;
    write_model(fs_, "/q4", spec_);
    ASSERT_TRUE(write_file_atomic(fs_, "/q4/generation_config.json", kGeneration).ok());
    ASSERT_TRUE(write_file_atomic(fs_, "/q4/tokenizer_config.json", kTokenizerConfig).ok());
  }
  Result<HfExportStats> run(const fs::path& in, const fs::path& out, HfExportOptions o = {}) {
    EXPECT_TRUE(fs_.create_dirs(out).ok());
    return export_hf(fs_, in, out, o, reporter_);
  }
  std::string read(const fs::path& p) {
    auto r = fs_.read_file(p);
    EXPECT_TRUE(r.ok()) << p;
    return r.ok() ? *r : "";
  }

  MemoryFileSystem fs_;
  RecordingReporter reporter_;
  ModelSpec spec_;
};

TEST_F(HfExportTest, WritesTheTransformersLayoutFieldByField) {
  auto r = run("/q4", "/hf");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->dtype, DType::kBF16);  // the scales' dtype, as the model's own
  EXPECT_EQ(r->shards, 1);
  // §1 files: one shard, no index (one shard needs none), side files carried over.
  auto names = fs_.list_dir("/hf");
  ASSERT_TRUE(names.ok());
  std::vector<std::string> sorted = *names;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<std::string>{"config.json", "generation_config.json", "model.safetensors",
                                              "tokenizer.json", "tokenizer_config.json"}));
  EXPECT_EQ(read("/hf/generation_config.json"), kGeneration);
  EXPECT_EQ(read("/hf/tokenizer_config.json"), kTokenizerConfig);
  EXPECT_EQ(read("/hf/tokenizer.json"), read("/q4/tokenizer.json"));

  // §2 tensors: {"format":"pt"}, transformers names, float in torch_dtype,
  // values exactly the float conversion's.
  auto st = SafetensorsFile::open(fs_, "/hf/model.safetensors");
  ASSERT_TRUE(st.ok()) << st.error().to_string();
  EXPECT_EQ(st->metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
  ASSERT_EQ(st->tensors().size(), spec_.tensors.size());
  for (const FloatTensor& t : spec_.tensors) {
    const TensorInfo* info = st->find(t.name);
    ASSERT_NE(info, nullptr) << t.name;
    EXPECT_EQ(info->dtype, DType::kBF16) << t.name;
    EXPECT_EQ(info->shape, t.shape) << t.name;
  }
  DequantizeOptions dq;
  ASSERT_TRUE(fs_.create_dirs("/dq").ok());
  ASSERT_TRUE(dequantize_model(fs_, "/q4", "/dq", dq, reporter_).ok());
  for (const FloatTensor& t : spec_.tensors)
    EXPECT_EQ(read_tensor(fs_, "/hf", t.name).values, read_tensor(fs_, "/dq", t.name).values) << t.name;

  // §3 config.json: no MLX quantization, no _name_or_path, torch_dtype, sorted, indent 2, newline;
  // eos_token_id as mlx_lm's loader merges it from generation_config.json.
  EXPECT_EQ(read("/hf/config.json"),
            "{\n"
            "  \"eos_token_id\": [\n"
            "    2,\n"
            "    3\n"
            "  ],\n"
            "  \"hidden_size\": 64,\n"
            "  \"model_type\": \"qwen2\",\n"
            "  \"num_hidden_layers\": 2,\n"
            "  \"rms_norm_eps\": 1e-06,\n"
            "  \"rope_theta\": 1000000.0,\n"
            "  \"tie_word_embeddings\": true,\n"
            "  \"torch_dtype\": \"bfloat16\"\n"
            "}\n");
}

TEST_F(HfExportTest, ChoosesTheDtypeAndAddsTorchDtypeWhenMissing) {
  spec_.config.erase("torch_dtype");
  write_model(fs_, "/q4b", spec_);
  HfExportOptions o;
  o.dtype = DType::kF16;
  auto r = run("/q4b", "/hf16", o);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  auto config = nlohmann::json::parse(read("/hf16/config.json"));
  EXPECT_EQ(config["torch_dtype"], "float16");
  EXPECT_FALSE(config.contains("quantization"));
  EXPECT_FALSE(config.contains("quantization_config"));
  auto st = SafetensorsFile::open(fs_, "/hf16/model.safetensors");
  ASSERT_TRUE(st.ok());
  for (const TensorInfo& t : st->tensors()) EXPECT_EQ(t.dtype, DType::kF16) << t.name;
}

TEST_F(HfExportTest, ShardsWithAnIndexWhenOneShardWouldBeTooBig) {
  HfExportOptions o;
  o.max_shard_bytes = 40000;  // a few tensors per shard
  auto r = run("/q4", "/hf", o);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  ASSERT_GT(r->shards, 1);
  auto index = nlohmann::json::parse(read("/hf/model.safetensors.index.json"));
  EXPECT_EQ(read("/hf/model.safetensors.index.json").back(), '\n');
  ASSERT_EQ(index["weight_map"].size(), spec_.tensors.size());
  uint64_t total = 0;
  std::map<std::string, int> per_shard;
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
    const std::string file = it.value();
    EXPECT_EQ(file.size(), std::string("model-00001-of-00002.safetensors").size()) << file;
    EXPECT_EQ(file.substr(0, 6), "model-");
    ++per_shard[file];
    auto st = SafetensorsFile::open(fs_, fs::path("/hf") / file);
    ASSERT_TRUE(st.ok()) << file;
    EXPECT_EQ(st->metadata().at("format"), "pt");
    const TensorInfo* info = st->find(it.key());
    ASSERT_NE(info, nullptr) << it.key() << " not in " << file;
    total += info->data_end - info->data_begin;
  }
  EXPECT_EQ(static_cast<int>(per_shard.size()), r->shards);
  EXPECT_EQ(index["metadata"]["total_size"], total);
  EXPECT_EQ(total, r->bytes);
  for (const auto& [file, n] : per_shard) {
    auto st = fs_.stat(fs::path("/hf") / file);
    ASSERT_TRUE(st.ok());
    EXPECT_LE(st->size, o.max_shard_bytes + 4096) << file << " (tensor bytes plus its header)";
  }
  EXPECT_EQ(fs_.stat("/hf/model.safetensors").ok(), false);
}

TEST_F(HfExportTest, AnArchitectureOrTensorWithoutATransformersNameIsUnsupported) {
  spec_.config["model_type"] = "mamba";
  write_model(fs_, "/mamba", spec_);
  auto r = run("/mamba", "/out1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kUnsupported);
  EXPECT_NE(r.error().where.find("/mamba/config.json"), std::string::npos) << r.error().to_string();
  EXPECT_NE(r.error().message.find("mamba"), std::string::npos);

  ModelSpec odd = tiny_qwen(DType::kBF16);
  odd.tensors.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", DType::kF32, {8}, make_values(8, 3, 1)});
  write_model(fs_, "/odd", odd);
  r = run("/odd", "/out2");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("model.layers.0.self_attn.rotary_emb.inv_freq"), std::string::npos)
      << r.error().to_string();
  auto left = fs_.list_dir("/out2");
  EXPECT_TRUE(left.ok() && left->empty()) << "nothing written before the check";
}

TEST(HfTensorName, KnowsTheDecoderNamesOfEachArchitecture) {
  EXPECT_EQ(hf_tensor_name("qwen2", "model.layers.12.self_attn.k_proj.bias"), "model.layers.12.self_attn.k_proj.bias");
  EXPECT_EQ(hf_tensor_name("llama", "lm_head.weight"), "lm_head.weight");
  EXPECT_EQ(hf_tensor_name("qwen3", "model.layers.0.self_attn.q_norm.weight"),
            "model.layers.0.self_attn.q_norm.weight");
  EXPECT_FALSE(hf_tensor_name("qwen2", "model.layers.0.self_attn.q_norm.weight"));
  EXPECT_FALSE(hf_tensor_name("qwen2", "model.layers.01.mlp.up_proj.weight"));
  EXPECT_FALSE(hf_tensor_name("qwen2", "model.layers.0.mlp.up_proj.scales"));
  EXPECT_FALSE(hf_tensor_name("gpt2", "lm_head.weight"));
}

}  // namespace
}  // namespace mb
